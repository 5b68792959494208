/* Video generation from a checkpoint (sample.h): the model as a DDIM
 * denoiser, the per-rank batch loop, and the pictures (GIF, grid). */
#include "sample/sample.h"
#include "core/die.h"
#include "media/gif_write.h"
#include "media/png_write.h"
#include "media/video_write.h"
#include "core/progress.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t clip_numel(const SampleSet *s) { return (size_t)s->F * s->C * s->H * s->W; }
static size_t frame_numel(const SampleSet *s) { return (size_t)s->C * s->H * s->W; }
static size_t pose_numel(const SampleSet *s) { return (size_t)s->F * s->Cp * s->sH * s->sW; }

void sample_set_alloc(SampleSet *s, const ModelShape *m, int N) {
    memset(s, 0, sizeof *s);
    s->N = N, s->F = m->F, s->C = m->C, s->H = m->H, s->W = m->W;
    s->Cp = m->Cp, s->sH = m->s * m->H, s->sW = m->s * m->W;
    s->PH = m->H, s->PW = m->W;
    size_t px = (size_t)m->H * m->W, ppx = (size_t)s->sH * s->sW;
    s->generated = ep_calloc((size_t)N * clip_numel(s), sizeof(float), "generated latents");
    s->truth = ep_calloc((size_t)N * clip_numel(s), sizeof(float), "ground-truth latents");
    s->reference = ep_calloc((size_t)N * frame_numel(s), sizeof(float), "reference latents");
    s->pose = ep_calloc((size_t)N * pose_numel(s), 1, "pose maps");
    s->gen_frames = ep_calloc((size_t)N * s->F * 3 * px, 1, "generated frames");
    s->truth_frames = ep_calloc((size_t)N * s->F * 3 * px, 1, "ground-truth frames");
    s->ref_frames = ep_calloc((size_t)N * 3 * px, 1, "reference frames");
    s->pose_frames = ep_calloc((size_t)N * s->F * 3 * ppx, 1, "pose pictures");
}

void sample_set_free(SampleSet *s) {
    free(s->generated), free(s->truth), free(s->reference), free(s->pose);
    free(s->gen_frames), free(s->truth_frames), free(s->ref_frames), free(s->pose_frames);
    memset(s, 0, sizeof *s);
}

/* ---- the model as a DDIM denoiser ---- */

typedef struct {
    Model *m;
    const float *ref, *pose;    /* the batch's conditioning */
    uint8_t *keep, *drop;       /* [B] flags: all 0 / all 1 */
} ModelDenoiser;

static void model_denoise(void *ctx, const float *x, const int *t, int cond, float *eps_hat) {
    ModelDenoiser *d = ctx;
    const uint8_t *flag = cond ? d->keep : d->drop; /* unconditional: reference and pose both dropped */
    Batch in = {x, t, d->ref, d->pose, flag, flag};
    model_forward(d->m, &in, eps_hat);
}

typedef struct {
    Progress prog;
    int batch, nbatch, every;
    long long done_before;
} SampleProgress;

static void step_hook(void *ctx, int k, int S) {
    SampleProgress *p = ctx;
    if ((k + 1) % p->every != 0 && k + 1 != S) return;
    progress_line(&p->prog, p->done_before + k + 1, "sample: batch %d/%d, DDIM step %d/%d", p->batch + 1,
                  p->nbatch, k + 1, S);
}

/* ---- the batch loop ---- */

typedef struct {
    float *x, *ref, *pose;
    Rng *rng;
    int *rows;                  /* sample index of each batch row */
} BatchBufs;

/* Fills rows 0..n-1 with samples idx[0..n-1] (noise from each sample's own
 * stream); rows n..B-1 repeat row 0, never kept: the model needs every row. */
static void load_batch(Dataset *ds, const SampleSet *s, uint64_t seed, const int *idx, int n, int B, BatchBufs *b,
                       float *clip_scratch) {
    size_t clip = clip_numel(s), frame = frame_numel(s), pclip = (size_t)s->F * s->Cp * s->sH * s->sW;
    for (int r = 0; r < B; r++) {
        int i = idx[r < n ? r : 0];
        rng_seed_stream(&b->rng[r], seed, SAMPLE_STREAM_BASE + (uint64_t)i);
        for (size_t j = 0; j < clip; j++) b->x[r * clip + j] = rng_normal(&b->rng[r]);
        dataset_read_clip(ds, i, 0, s->F, clip_scratch, b->pose + r * pclip);
        dataset_read_frame(ds, i, SAMPLE_REF_FRAME, b->ref + r * frame);
    }
}

void sample_generate(Model *m, Dataset *ds, const DdimConfig *c, uint64_t seed, SampleSet *s, MPI_Comm comm) {
    int rank = 0, R = 1, B = m->B;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &R);
    size_t clip = clip_numel(s), pclip = (size_t)s->F * s->Cp * s->sH * s->sW;
    if (B < 1) ep_die("internal: sample_generate on a model without a batch");
    int mine = s->N > rank ? (s->N - rank + R - 1) / R : 0;
    int nbatch = (mine + B - 1) / B;
    BatchBufs b;
    b.x = ep_malloc((size_t)B * clip * sizeof(float), "sample x_t");
    b.ref = ep_malloc((size_t)B * frame_numel(s) * sizeof(float), "sample reference");
    b.pose = ep_malloc((size_t)B * pclip * sizeof(float), "sample pose");
    b.rng = ep_malloc((size_t)B * sizeof(Rng), "sample streams");
    b.rows = ep_malloc((size_t)B * sizeof(int), "sample rows");
    float *clip_scratch = ep_malloc(clip * sizeof(float), "sample clip");
    ModelDenoiser den = {m, b.ref, b.pose, ep_calloc((size_t)B, 1, "keep flags"), ep_malloc((size_t)B, "drop flags")};
    memset(den.drop, 1, (size_t)B);
    SampleProgress sp = {.nbatch = nbatch, .every = c->steps / 10 > 1 ? c->steps / 10 : 1};
    progress_start(&sp.prog, "sampling", (long long)nbatch * c->steps);
    DdimModel dm = {model_denoise, &den, step_hook, &sp};
    Diffusion diff;
    diffusion_init(&diff);
    for (int k = 0; k < nbatch; k++) {
        int n = mine - k * B < B ? mine - k * B : B;
        for (int r = 0; r < n; r++) b.rows[r] = rank + (k * B + r) * R;
        load_batch(ds, s, seed, b.rows, n, B, &b, clip_scratch);
        sp.batch = k, sp.done_before = (long long)k * c->steps;
        ddim_sample(&diff, c, &dm, B, clip, b.x, b.rng);
        for (int r = 0; r < n; r++) memcpy(s->generated + (size_t)b.rows[r] * clip, b.x + r * clip, clip * sizeof(float));
    }
    if (nbatch) progress_done(&sp.prog);
    /* every other rank's rows are zero here, so a sum gathers exactly (x + 0 = x) */
    size_t total = (size_t)s->N * clip;
    if (R > 1) {
        if (total > (size_t)2147483647) ep_die("sample: %zu generated values are too many to gather over MPI", total);
        MPI_Reduce(rank == 0 ? MPI_IN_PLACE : s->generated, s->generated, (int)total, MPI_FLOAT, MPI_SUM, 0, comm);
    }
    free(b.x), free(b.ref), free(b.pose), free(b.rng), free(b.rows), free(clip_scratch), free(den.keep), free(den.drop);
}

/* ---- truth and pictures ---- */

void sample_read_truth(Dataset *ds, SampleSet *s) {
    size_t clip = clip_numel(s), frame = frame_numel(s), pclip = pose_numel(s);
    float *pose = ep_malloc(pclip * sizeof(float), "pose clip");
    for (int i = 0; i < s->N; i++) {
        dataset_read_clip(ds, i, 0, s->F, s->truth + i * clip, pose);
        dataset_read_frame(ds, i, SAMPLE_REF_FRAME, s->reference + i * frame);
        for (size_t j = 0; j < pclip; j++) {
            float v = pose[j] < 0 ? 0.f : pose[j] > 1 ? 1.f : pose[j];
            s->pose[i * pclip + j] = (uint8_t)lrintf(v * 255.f);
        }
    }
    free(pose);
}

/* roundf rather than v + 0.5f: no add for the compiler to fuse with the
 * multiply, so numpy's float32 (x + 1) * 127.5 reproduces every byte. */
static uint8_t latent_byte(float x) {
    float v = (x + 1.f) * 127.5f;
    if (!(v > 0.f)) return 0; /* NaN shows as black */
    if (v >= 255.f) return 255;
    return (uint8_t)roundf(v);
}

void sample_latent_rgb(const float *x, int C, int H, int W, uint8_t *rgb) {
    size_t px = (size_t)H * W;
    for (int ch = 0; ch < 3; ch++) {
        const float *src = x + (C >= 3 ? ch : 0) * px;
        for (size_t j = 0; j < px; j++) rgb[ch * px + j] = latent_byte(src[j]);
    }
}

void sample_pose_rgb(const uint8_t *pose, int Cp, int sH, int sW, uint8_t *rgb) {
    size_t px = (size_t)sH * sW;
    for (int ch = 0; ch < 3; ch++) memcpy(rgb + ch * px, pose + (Cp >= 3 ? ch : 0) * px, px);
}

void sample_make_frames(SampleSet *s) {
    size_t frame = frame_numel(s), px = (size_t)s->H * s->W, ppx = (size_t)s->sH * s->sW;
    for (int i = 0; i < s->N; i++) {
        sample_latent_rgb(s->reference + i * frame, s->C, s->H, s->W, s->ref_frames + i * 3 * px);
        for (int f = 0; f < s->F; f++) {
            size_t k = (size_t)i * s->F + f;
            sample_latent_rgb(s->generated + k * frame, s->C, s->H, s->W, s->gen_frames + k * 3 * px);
            sample_latent_rgb(s->truth + k * frame, s->C, s->H, s->W, s->truth_frames + k * 3 * px);
            sample_pose_rgb(s->pose + k * s->Cp * ppx, s->Cp, s->sH, s->sW, s->pose_frames + k * 3 * ppx);
        }
    }
}

/* Latents [C,H,W] -> the VAE's image [3,PH,PW] -> bytes, as pixel-space latents are shown. */
static void decode_rgb(const Vae *vae, const SampleSet *s, const float *z, float *img, uint8_t *rgb) {
    vae_decode(vae, z, 1, s->H, s->W, img);
    sample_latent_rgb(img, vae->cfg.out_ch, s->PH, s->PW, rgb);
}

void sample_decode_frames(SampleSet *s, const Vae *vae) {
    int f = vae_factor(&vae->cfg);
    s->PH = s->H * f, s->PW = s->W * f;
    size_t frame = frame_numel(s), px = (size_t)s->PH * s->PW, nf = (size_t)s->N * s->F;
    free(s->gen_frames), free(s->truth_frames), free(s->ref_frames);
    s->gen_frames = ep_malloc(nf * 3 * px, "decoded generated frames");
    s->truth_frames = ep_malloc(nf * 3 * px, "decoded ground-truth frames");
    s->ref_frames = ep_malloc((size_t)s->N * 3 * px, "decoded reference frames");
    float *img = ep_malloc((size_t)vae->cfg.out_ch * px * sizeof(float), "decoded frame");
    for (int i = 0; i < s->N; i++) {
        decode_rgb(vae, s, s->reference + i * frame, img, s->ref_frames + i * 3 * px);
        for (int t = 0; t < s->F; t++) {
            size_t k = (size_t)i * s->F + t;
            decode_rgb(vae, s, s->generated + k * frame, img, s->gen_frames + k * 3 * px);
            decode_rgb(vae, s, s->truth + k * frame, img, s->truth_frames + k * 3 * px);
        }
    }
    free(img);
}

int sample_zoom(int H, int W, int min_px) {
    int side = H < W ? H : W;
    int z = (min_px + side - 1) / side;
    return z < 1 ? 1 : z;
}

/* Nearest-neighbour copy of a planar [3,h,w] picture into a cw x ch cell of an
 * interleaved RGB image of width img_w: cell pixel (x, y) shows source pixel
 * (x * w / cw, y * h / ch). */
static void blit(uint8_t *img, int img_w, int x0, int y0, int cw, int ch, const uint8_t *src, int w, int h) {
    size_t plane = (size_t)w * h;
    for (int y = 0; y < ch; y++) {
        int sy = (int)((long)y * h / ch);
        for (int x = 0; x < cw; x++) {
            int sx = (int)((long)x * w / cw);
            uint8_t *dst = img + ((size_t)(y0 + y) * img_w + x0 + x) * 3;
            for (int k = 0; k < 3; k++) dst[k] = src[k * plane + (size_t)sy * w + sx];
        }
    }
}

void sample_write_grid(const char *path, const SampleSet *s) {
    int z = sample_zoom(s->PH, s->PW, SAMPLE_GRID_MIN_PX), cw = s->PW * z, ch = s->PH * z, gap = SAMPLE_GRID_GAP;
    int cols = 1 + 3 * s->F;
    int w = cols * (cw + gap) + gap, h = s->N * (ch + gap) + gap;
    uint8_t *img = ep_malloc((size_t)w * h * 3, "grid picture");
    memset(img, SAMPLE_GRID_BG, (size_t)w * h * 3);
    size_t px = (size_t)s->PH * s->PW, ppx = (size_t)s->sH * s->sW;
    for (int i = 0; i < s->N; i++) {
        int y = gap + i * (ch + gap);
        blit(img, w, gap, y, cw, ch, s->ref_frames + i * 3 * px, s->PW, s->PH);
        for (int f = 0; f < s->F; f++) {
            size_t k = (size_t)i * s->F + f;
            int x_pose = gap + (1 + f) * (cw + gap), x_gen = x_pose + s->F * (cw + gap), x_gt = x_gen + s->F * (cw + gap);
            blit(img, w, x_pose, y, cw, ch, s->pose_frames + k * 3 * ppx, s->sW, s->sH);
            blit(img, w, x_gen, y, cw, ch, s->gen_frames + k * 3 * px, s->PW, s->PH);
            blit(img, w, x_gt, y, cw, ch, s->truth_frames + k * 3 * px, s->PW, s->PH);
        }
    }
    png_write_rgb(path, w, h, img);
    free(img);
}

void sample_write_gif(const char *path, const SampleSet *s, int i, double fps) {
    int z = sample_zoom(s->PH, s->PW, SAMPLE_GIF_MIN_PX), w = s->PW * z, h = s->PH * z;
    size_t px = (size_t)s->PH * s->PW;
    uint8_t pal[768];
    gif_cube_palette(pal);
    uint8_t *rgb = ep_malloc((size_t)w * h * 3, "GIF frame"), *index = ep_malloc((size_t)w * h, "GIF indices");
    GifWriter g;
    gif_open(&g, path, w, h, pal);
    for (int f = 0; f < s->F; f++) {
        blit(rgb, w, 0, 0, w, h, s->gen_frames + ((size_t)i * s->F + f) * 3 * px, s->PW, s->PH);
        for (size_t j = 0; j < (size_t)w * h; j++) index[j] = gif_cube_index(rgb[3 * j], rgb[3 * j + 1], rgb[3 * j + 2]);
        gif_add_frame(&g, index, gif_delay_cs(fps));
    }
    gif_close(&g);
    free(rgb), free(index);
}

/* ---- MP4 (H.264) ---- */

void sample_write_mp4(const char *path, const SampleSet *s, int i, double fps) {
    int z = sample_zoom(s->PH, s->PW, SAMPLE_GIF_MIN_PX), w = s->PW * z, h = s->PH * z;
    size_t px = (size_t)s->PH * s->PW;
    uint8_t *rgb = ep_malloc((size_t)w * h * 3, "MP4 frame");
    VideoWriter *v = video_write_open(path, w, h, fps);
    for (int f = 0; f < s->F; f++) {
        blit(rgb, w, 0, 0, w, h, s->gen_frames + ((size_t)i * s->F + f) * 3 * px, s->PW, s->PH);
        video_write_frame(v, rgb);
    }
    video_write_close(v);
    free(rgb);
}

void sample_write_side_by_side(const char *path, const SampleSet *s, int i, double fps) {
    int z = sample_zoom(s->PH, s->PW, SAMPLE_GIF_MIN_PX), cw = s->PW * z, ch = s->PH * z, gap = SAMPLE_GRID_GAP;
    int w = 4 * (cw + gap) + gap, h = ch + 2 * gap;
    size_t px = (size_t)s->PH * s->PW, ppx = (size_t)s->sH * s->sW;
    uint8_t *img = ep_malloc((size_t)w * h * 3, "side-by-side frame");
    memset(img, SAMPLE_GRID_BG, (size_t)w * h * 3);
    VideoWriter *v = video_write_open(path, w, h, fps);
    for (int f = 0; f < s->F; f++) {
        size_t k = (size_t)i * s->F + f;
        blit(img, w, gap, gap, cw, ch, s->ref_frames + (size_t)i * 3 * px, s->PW, s->PH);
        blit(img, w, gap + (cw + gap), gap, cw, ch, s->pose_frames + k * 3 * ppx, s->sW, s->sH);
        blit(img, w, gap + 2 * (cw + gap), gap, cw, ch, s->gen_frames + k * 3 * px, s->PW, s->PH);
        blit(img, w, gap + 3 * (cw + gap), gap, cw, ch, s->truth_frames + k * 3 * px, s->PW, s->PH);
        video_write_frame(v, img);
    }
    video_write_close(v);
    free(img);
}

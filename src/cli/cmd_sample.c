/* entprog sample <deck> --ckpt CKPT [--steps S] [--eta E] [--guidance W]
 *                [--n N] [--input FILE] [--out DIR] [--seed K] [--ema] [--clip C]
 * Generates videos for the first N videos of the test split (or of --input)
 * and writes <out>/samples.h5, <out>/sample_<i>.gif and <out>/grid.png
 * (docs/sampling.md). Several MPI ranks split the samples; rank 0 writes. */
#define _POSIX_C_SOURCE 200809L
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/infer_model.h"
#include "core/paths.h"
#include "deck/deck.h"
#include "core/die.h"
#include "io/h5util.h"
#include "io/vae_load.h"
#include "sample/sample.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_FORMAT_VERSION 1
#define DEFAULT_STEPS 50
#define DEFAULT_N 8

typedef struct {
    const char *deck, *ckpt, *input, *out;
    DdimConfig ddim;
    int n;              /* 0: min(DEFAULT_N, videos) */
    int has_seed, ema, has_clip;
    long long seed;     /* < 2^63: samples.h5 keeps it as an int64 attribute */
} SampleArgs;

/* 0 when --help was asked for. */
static int parse_args(int argc, char **argv, SampleArgs *a) {
    *a = (SampleArgs){.ddim = {DEFAULT_STEPS, 0.0, 1.0, 0.0}};
    const ArgOpt opts[] = {
        {"--ckpt", ARG_STR, &a->ckpt, .required = 1, .what = "the checkpoint to sample from"},
        {"--steps", ARG_INT, &a->ddim.steps, 1, DIFFUSION_T, .what = "DDIM steps (default 50)"},
        {"--eta", ARG_REAL, &a->ddim.eta, .what = "DDIM noise, >= 0 (default 0: deterministic)"},
        {"--guidance", ARG_REAL, &a->ddim.guidance, .what = "classifier-free guidance weight (default 1: none)"},
        {"--n", ARG_INT, &a->n, 1, INT_MAX, .what = "videos to generate (default: up to 8)"},
        {"--input", ARG_STR, &a->input, .what = "dataset to take videos from (default: <data.dir>/test.h5)"},
        {"--out", ARG_STR, &a->out, .what = "output folder (default: samples next to the checkpoint)"},
        {"--seed", ARG_INT64, &a->seed, 0, LLONG_MAX, .what = "noise seed (default: the deck's train.seed)",
         .given = &a->has_seed},
        {"--ema", ARG_FLAG, &a->ema, .what = "sample with the checkpoint's EMA weights"},
        {"--clip", ARG_REAL, &a->ddim.clip, .what = "clamp x0_hat to [-C, C], 0: off (default: 1 on pixel data)",
         .given = &a->has_clip},
    };
    ArgSpec spec = {"sample", &a->deck, opts, sizeof opts / sizeof *opts, NULL};
    if (!args_parse(&spec, argc, argv)) return 0;
    ddim_check(&a->ddim, "sample");
    return 1;
}

/* Default output folder: "samples" next to the checkpoint. */
static void default_out(const char *ckpt, char *out, size_t n) {
    const char *slash = strrchr(ckpt, '/');
    if (!slash) snprintf(out, n, "samples");
    else snprintf(out, n, "%.*s/samples", (int)(slash - ckpt), ckpt);
}

/* "pixel" or the dataset's latent_space attribute ("" when absent). */
static void latent_space(const char *path, char *buf, size_t n) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    buf[0] = 0;
    if (h5_has_attr(f, "/", "latent_space")) {
        char *s = h5_get_attr_str(f, path, "/", "latent_space");
        snprintf(buf, n, "%s", s);
        free(s);
    }
    h5_close(f);
}

static void write_dims5(hid_t f, const char *name, const float *x, int N, int F, int C, int H, int W) {
    hsize_t d[5] = {(hsize_t)N, (hsize_t)F, (hsize_t)C, (hsize_t)H, (hsize_t)W};
    h5_write_f32(f, name, x, 5, d, 0);
}

typedef struct {
    const SampleArgs *a;
    const Deck *deck;
    const char *input, *space;
    uint64_t seed;
    const int *video;
    const Vae *vae;     /* NULL: pictures straight from the latents (pixel space) */
} RunInfo;

static void write_attrs(hid_t f, const RunInfo *r, int N) {
    h5_attr_int(f, "/", "format_version", SAMPLES_FORMAT_VERSION);
    h5_attr_int(f, "/", "steps", r->a->ddim.steps);
    h5_attr_double(f, "/", "eta", r->a->ddim.eta);
    h5_attr_double(f, "/", "guidance", r->a->ddim.guidance);
    h5_attr_double(f, "/", "clip", r->a->ddim.clip);
    h5_attr_int(f, "/", "seed", (long long)r->seed); /* < 2^63: checked when chosen */
    h5_attr_str(f, "/", "checkpoint", r->a->ckpt);
    h5_attr_str(f, "/", "weights", r->a->ema ? "ema" : "model");
    h5_attr_str(f, "/", "input", r->input);
    h5_attr_str(f, "/", "latent_space", r->space);
    if (r->vae) h5_attr_str(f, "/", "vae", r->deck->data.vae); /* the frames are its decodings */
    h5_attr_int(f, "/", "n", N);
    h5_attr_int(f, "/", "reference_frame", SAMPLE_REF_FRAME);
    h5_attr_int(f, "/", "frame_stride", r->deck->data.frame_stride);
    h5_attr_double(f, "/", "fps", r->deck->data.fps);
}

/* samples.h5 through a temporary name, so a crash leaves no half-written file. */
static void write_samples_h5(const char *path, const SampleSet *s, const RunInfo *r) {
    char tmp[DECK_PATH_MAX + 80];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = h5_create(tmp, MPI_COMM_NULL);
    write_attrs(f, r, s->N);
    int N = s->N, F = s->F;
    write_dims5(f, "/generated", s->generated, N, F, s->C, s->H, s->W);
    write_dims5(f, "/ground_truth", s->truth, N, F, s->C, s->H, s->W);
    hsize_t dr[4] = {(hsize_t)N, (hsize_t)s->C, (hsize_t)s->H, (hsize_t)s->W};
    h5_write_f32(f, "/reference", s->reference, 4, dr, 0);
    hsize_t dfr[5] = {(hsize_t)N, (hsize_t)F, 3, (hsize_t)s->PH, (hsize_t)s->PW};
    h5_write_u8(f, "/generated_frames", s->gen_frames, 5, dfr, 0);
    h5_write_u8(f, "/ground_truth_frames", s->truth_frames, 5, dfr, 0);
    hsize_t drf[4] = {(hsize_t)N, 3, (hsize_t)s->PH, (hsize_t)s->PW};
    h5_write_u8(f, "/reference_frames", s->ref_frames, 4, drf, 0);
    hsize_t dp[5] = {(hsize_t)N, (hsize_t)F, (hsize_t)s->Cp, (hsize_t)s->sH, (hsize_t)s->sW};
    h5_write_u8(f, "/pose", s->pose, 5, dp, 0);
    hsize_t dn = (hsize_t)N, ds = (hsize_t)r->a->ddim.steps;
    h5_write_i32(f, "/video", (const int32_t *)r->video, 1, &dn, 0);
    int32_t *ts = ep_malloc(ds * sizeof(int32_t), "timesteps");
    ddim_timesteps((int)ds, (int *)ts);
    h5_write_i32(f, "/timesteps", ts, 1, &ds, 0);
    free(ts);
    h5_close(f);
    if (rename(tmp, path) != 0) ep_die("sample: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
}

static void write_outputs(const char *out, SampleSet *s, Dataset *ds, const RunInfo *r) {
    char path[DECK_PATH_MAX + 64];
    sample_read_truth(ds, s);
    sample_make_frames(s);
    if (r->vae) sample_decode_frames(s, r->vae);
    path_join(path, sizeof path, out, "samples.h5");
    write_samples_h5(path, s, r);
    for (int i = 0; i < s->N; i++) {
        char name[32];
        snprintf(name, sizeof name, "sample_%d.gif", i);
        path_join(path, sizeof path, out, name);
        sample_write_gif(path, s, i, r->deck->data.fps);
        snprintf(name, sizeof name, "sample_%d.mp4", i);
        path_join(path, sizeof path, out, name);
        sample_write_mp4(path, s, i, r->deck->data.fps);
        snprintf(name, sizeof name, "side_by_side_%d.mp4", i);
        path_join(path, sizeof path, out, name);
        sample_write_side_by_side(path, s, i, r->deck->data.fps);
    }
    path_join(path, sizeof path, out, "grid.png");
    sample_write_grid(path, s);
    printf("wrote %s/samples.h5, %s/sample_{0..%d}.gif and %s/grid.png\n", out, out, s->N - 1, out);
    printf("wrote %s/sample_{0..%d}.mp4 and %s/side_by_side_{0..%d}.mp4 (H.264)\n", out, s->N - 1, out, s->N - 1);
}

/* N: --n, or up to DEFAULT_N videos of the file. */
static int sample_count(const SampleArgs *a, Dataset *ds, const char *input) {
    int have = dataset_videos(ds);
    if (a->n > have) ep_die("sample: --n %d but '%s' holds only %d videos", a->n, input, have);
    return a->n ? a->n : have < DEFAULT_N ? have : DEFAULT_N;
}

/* data.vae: the VAE that decodes this latent-space model's samples, checked
 * against the deck and the dataset (rank 0 only: only it makes pictures). */
static Vae *load_vae(const Deck *deck, const char *input, const char *space) {
    const char *path = deck->data.vae;
    if (!space[0] || !strcmp(space, "pixel")) /* files without the attribute are pixel space too */
        ep_die("sample: the deck names data.vae = '%s' but '%s' is in pixel space (latent_space 'pixel' or none): "
               "sample a latent-space dataset (entprog encode --dataset-in) or drop data.vae", path, input);
    infer_check_readable("sample", "data.vae", path);
    Vae *v = ep_calloc(1, sizeof *v, "VAE");
    vae_load(v, path);
    if (v->cfg.latent != deck->model.C)
        ep_die("sample: VAE '%s' has %d latent channels but the deck's model.C = %d", path, v->cfg.latent, deck->model.C);
    hid_t f = h5_open_read(input, MPI_COMM_NULL);
    if (h5_has_attr(f, "/", "latent_scale")) { /* the same VAE the dataset was encoded with, as far as its scale shows */
        double ds = h5_get_attr_double(f, input, "/", "latent_scale");
        if (fabs(ds - v->cfg.scale) > 1e-6 * fabs(v->cfg.scale))
            ep_die("sample: '%s' was encoded with latent_scale %g but VAE '%s' has scaling_factor %g", input, ds, path,
                   (double)v->cfg.scale);
    }
    h5_close(f);
    return v;
}

int cmd_sample(int argc, char **argv) {
    SampleArgs a;
    if (!parse_args(argc, argv, &a)) return 0;
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    Deck deck;
    deck_load(&deck, a.deck);
    char input[DECK_PATH_MAX + 64], out[DECK_PATH_MAX + 64], space[64];
    if (a.input) snprintf(input, sizeof input, "%s", a.input);
    else path_join(input, sizeof input, deck.data.dir, "test.h5");
    if (a.out) snprintf(out, sizeof out, "%s", a.out);
    else default_out(a.ckpt, out, sizeof out);
    Model m;
    InferSpec spec = {"sample", "--ckpt", a.ckpt, deck.train.backend, a.ema, .B = deck.train.batch, .F = deck.model.F};
    infer_model_load(&m, &deck.model, &spec);
    Dataset *ds = dataset_open(input, &deck.model, deck.data.frame_stride);
    latent_space(input, space, sizeof space);
    Vae *vae = deck.data.vae[0] && rank == 0 ? load_vae(&deck, input, space) : NULL;
    if (strcmp(space, "pixel") && rank == 0 && !deck.data.vae[0])
        ep_warn("sample: '%s' has latent_space '%s', not 'pixel': the pictures show latent channels, not decoded frames (name its VAE as data.vae)",
                input, space);
    /* pixel-space data lies in [-1, 1]: clamping x0_hat there keeps early,
     * poorly predicted steps from throwing the trajectory off the data */
    if (!a.has_clip) a.ddim.clip = !strcmp(space, "pixel") ? 1.0 : 0.0;
    int N = sample_count(&a, ds, input);
    if (rank == 0) path_mkdirs(out, "--out");
    uint64_t seed = a.has_seed ? (uint64_t)a.seed : deck.train.seed;
    if (seed > (uint64_t)LLONG_MAX) /* samples.h5 keeps it as an int64 attribute */
        ep_die("sample: the deck's train.seed %llu is 2^63 or more; give --seed below 2^63",
               (unsigned long long)seed);
    if (rank == 0) {
        printf("entprog sample: %s (%s weights) on %d videos of %s: %d DDIM steps, eta %g, guidance %g, clip %g, "
               "seed %llu, batch %d, %d rank(s)\n", a.ckpt, a.ema ? "EMA" : "model", N, input, a.ddim.steps,
               a.ddim.eta, a.ddim.guidance, a.ddim.clip, (unsigned long long)seed, m.B, world);
        fflush(stdout);
    }
    SampleSet s;
    sample_set_alloc(&s, &deck.model, N);
    sample_generate(&m, ds, &a.ddim, seed, &s, MPI_COMM_WORLD);
    if (rank == 0) {
        int *video = ep_malloc((size_t)N * sizeof(int), "video indices");
        for (int i = 0; i < N; i++) video[i] = i;
        RunInfo r = {&a, &deck, input, space, seed, video, vae};
        write_outputs(out, &s, ds, &r);
        free(video);
    }
    sample_set_free(&s);
    if (vae) vae_free(vae), free(vae);
    dataset_close(ds);
    model_destroy(&m);
    deck_free(&deck);
    return 0;
}

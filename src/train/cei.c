/* CEI scores of the blocks (cei.h). The loop runs over probe batches on the
 * outside and over the L+1 model configurations (full, skip(0..L-1)) on the
 * inside: each tuple is drawn and read once, only one batch is ever in memory,
 * and every configuration sees exactly the same tuples. */
#include "train/cei.h"
#include "core/die.h"
#include "core/progress.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t clip_numel(const ModelShape *s) { return (size_t)s->F * s->C * s->H * s->W; }
static size_t frame_numel(const ModelShape *s) { return (size_t)s->C * s->H * s->W; }
static size_t pose_numel(const ModelShape *s) { return (size_t)s->F * s->Cp * (s->s * s->H) * (s->s * s->W); }

void cei_batch_alloc(CeiBatch *b, const ModelShape *s, int B) {
    size_t clip = (size_t)B * clip_numel(s);
    b->B = B;
    b->x0 = ep_malloc(clip * sizeof(float), "CEI probe x0");
    b->eps = ep_malloc(clip * sizeof(float), "CEI probe eps");
    b->x = ep_malloc(clip * sizeof(float), "CEI probe x_t");
    b->ref = ep_malloc((size_t)B * frame_numel(s) * sizeof(float), "CEI probe ref");
    b->pose = ep_malloc((size_t)B * pose_numel(s) * sizeof(float), "CEI probe pose");
    b->t = ep_malloc((size_t)B * sizeof(int), "CEI probe t");
    b->no_drop = ep_calloc((size_t)B, 1, "CEI probe flags");
}

void cei_batch_free(CeiBatch *b) {
    free(b->x0), free(b->eps), free(b->x), free(b->ref), free(b->pose), free(b->t), free(b->no_drop);
    memset(b, 0, sizeof *b);
}

Batch cei_batch_view(const CeiBatch *b) {
    return (Batch){b->x, b->t, b->ref, b->pose, b->no_drop, b->no_drop};
}

void cei_probe_draw(Rng *r, Dataset *ds, const Diffusion *d, const ModelShape *s, CeiBatch *b, int row) {
    size_t clip = clip_numel(s), frame = frame_numel(s), pclip = pose_numel(s);
    int video, start, ref_frame;
    /* every random number of the tuple before any file read: the draw order is the contract */
    dataset_pick(ds, r, s->F, &video, &start, &ref_frame);
    b->t[row] = (int)rng_below(r, DIFFUSION_T);
    float *eps = b->eps + row * clip;
    for (size_t j = 0; j < clip; j++) eps[j] = rng_normal(r);
    dataset_read_clip(ds, video, start, s->F, b->x0 + row * clip, b->pose + row * pclip);
    dataset_read_frame(ds, video, ref_frame, b->ref + row * frame);
    diffusion_noise(d, b->x + row * clip, b->x0 + row * clip, eps, b->t + row, 1, clip);
}

/* Rows n..B-1 of a partial last batch repeat row 0: the model needs valid
 * inputs in every row, samples do not interact, and these rows are never counted. */
static void pad_rows(CeiBatch *b, const ModelShape *s, int n) {
    size_t clip = clip_numel(s), frame = frame_numel(s), pclip = pose_numel(s);
    for (int i = n; i < b->B; i++) {
        memcpy(b->x + i * clip, b->x, clip * sizeof(float));
        memcpy(b->ref + i * frame, b->ref, frame * sizeof(float));
        memcpy(b->pose + i * pclip, b->pose, pclip * sizeof(float));
        b->t[i] = b->t[0];
    }
}

/* Population standard deviation of n values, two passes in double (no
 * cancellation from sum-of-squares minus squared sum). */
static double spread(const float *x, size_t n) {
    double mean = 0, ss = 0;
    for (size_t j = 0; j < n; j++) mean += x[j];
    mean /= (double)n;
    for (size_t j = 0; j < n; j++) {
        double e = x[j] - mean;
        ss += e * e;
    }
    return sqrt(ss / (double)n);
}

/* A zero or non-finite spread makes log(sigma_skip / sigma_full) meaningless:
 * stop with the probe and configuration rather than store inf or NaN. */
static double checked_spread(const float *x, size_t n, long long probe, int block) {
    double s = spread(x, n);
    if (!(s > 0) || !isfinite(s)) {
        char what[48];
        if (block < 0) snprintf(what, sizeof what, "the full model");
        else snprintf(what, sizeof what, "the model with block %d skipped", block);
        ep_die("cei: %s predicts eps_hat with standard deviation %g for probe %lld; CEI needs a non-constant, "
               "finite prediction (untrained weights? the output layer is zero at initialisation)", what, s, probe);
    }
    return s;
}

/* Progress every ~5% of the batches (at least every batch when there are few). */
static void report(Progress *p, int batch, int nbatch, long long done_probes, int N, int L) {
    int every = nbatch / 20 > 1 ? nbatch / 20 : 1;
    if ((batch + 1) % every != 0 && batch + 1 != nbatch) return;
    progress_line(p, (long long)(batch + 1) * (L + 1), "cei: %lld/%d probe tuples", done_probes, N);
}

void cei_compute(Model *m, Dataset *ds, int N, uint64_t seed, double *pi) {
    const ModelShape *s = &m->shape;
    int B = m->B, L = s->L;
    if (N < 1) ep_die("cei: the probe set needs at least 1 tuple (got %d)", N);
    if (B < 1) ep_die("internal: cei_compute on a model without a batch (model_set_batch first)");
    size_t clip = clip_numel(s);
    CeiBatch pb;
    cei_batch_alloc(&pb, s, B);
    float *full = ep_malloc((size_t)B * clip * sizeof(float), "CEI eps_hat");
    float *part = ep_malloc((size_t)B * clip * sizeof(float), "CEI eps_hat");
    double *sigma_full = ep_malloc((size_t)B * sizeof(double), "CEI sigmas");
    double *sum = ep_calloc((size_t)L, sizeof(double), "CEI sums");
    int *skip = ep_calloc((size_t)L, sizeof(int), "CEI skip flags");
    const int *saved = m->skip;
    Diffusion diff;
    diffusion_init(&diff);
    Rng r;
    rng_seed_stream(&r, seed, CEI_STREAM);

    int nbatch = (N + B - 1) / B;
    Progress prog;
    progress_start(&prog, "cei forward passes", (long long)nbatch * (L + 1));
    Batch in = cei_batch_view(&pb);
    for (int k = 0; k < nbatch; k++) {
        int first = k * B, n = N - first < B ? N - first : B;
        for (int i = 0; i < n; i++) cei_probe_draw(&r, ds, &diff, s, &pb, i);
        pad_rows(&pb, s, n);

        m->skip = skip; /* all zero: the full model */
        model_forward(m, &in, full);
        for (int i = 0; i < n; i++) sigma_full[i] = checked_spread(full + i * clip, clip, first + i, -1);
        for (int b = 0; b < L; b++) {
            skip[b] = 1;
            model_forward(m, &in, part);
            skip[b] = 0;
            /* samples in probe order, so the sum is the same whatever B */
            for (int i = 0; i < n; i++)
                sum[b] += log(checked_spread(part + i * clip, clip, first + i, b) / sigma_full[i]);
        }
        report(&prog, k, nbatch, (long long)first + n, N, L);
    }
    progress_done(&prog);
    m->skip = saved;
    for (int b = 0; b < L; b++) pi[b] = sum[b] / N;
    free(full), free(part), free(sigma_full), free(sum), free(skip);
    cei_batch_free(&pb);
}

/* a ranks before b: higher score, or the same score and a lower index. */
static int ranks_before(const double *pi, int a, int b) {
    return pi[a] > pi[b] || (pi[a] == pi[b] && a < b);
}

void cei_rank(const double *pi, int L, int *order) {
    for (int b = 0; b < L; b++) order[b] = b;
    /* insertion sort: L is at most a few dozen and it is stable by construction */
    for (int i = 1; i < L; i++)
        for (int j = i; j > 0 && ranks_before(pi, order[j], order[j - 1]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

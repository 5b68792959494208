/* Finite differences on the whole EP-VDiT model.
 *
 * A very small shape (F=3, C=2, H=W=8, p=2, D=16, NH=2, L=2, mlp_ratio=2,
 * Cp=3, s=2, Cg=4, B=2), every parameter random and non-zero (including the
 * tensors docs/model.md zero-initialises, so every path is live), random inputs,
 * loss = mse_loss against random eps. For every parameter tensor the analytic
 * directional derivative grads . v, v random and restricted to that tensor,
 * is compared with finite differences of the loss; then once along a random
 * direction over all parameters.
 *
 * Configurations: video without drops; video with drop_ref = [1,0],
 * drop_pose = [0,1]; video with both conditions dropped for every sample;
 * video with block 0 skipped; image mode (F = 1). Then skip equivalences
 * (test_skip): an L=2 model with one block skipped equals the L=1 model made
 * of the other block, in eps_hat and in every gradient.
 *
 * Numeric side: central differences of the loss at h = 1e-2 and 2h, h
 * relative to each tensor's rms (v_i = rms * N(0,1)), combined by Richardson,
 * N = (4 D(h) - D(2h)) / 3; the analytic side likewise, from the perturbation
 * actually applied. Tolerance: |a - N| <= RTOL * max(|a|, |N|) + noise +
 * GTOL * sum |g_i v_i|, RTOL = 1e-3, GTOL = 2e-5.
 *  - The forward runs in float32; the loss is accumulated in double, so its
 *    error is that of eps_hat: dL = (2/n) sum e_i d(eps_hat_i). The noise term
 *    is 1.5 * NOISE_ULPS * 2^-24 * (2/n) sum |e_i| |eps_hat_i| / 2h with
 *    NOISE_ULPS = 2 (the largest error seen over 40 seeds was 0.85 of it); it
 *    matters only for tensors whose directional derivative is tiny (such as
 *    t_embed.mlp.0.bias, whose effect passes two SiLUs and the modulations).
 *  - Truncation: a 1% step through LayerNorm, softmax and GELU leaves plain
 *    central differences ~1e-3 off, and far more where L'(v) cancels by
 *    chance; the extrapolation removes the h^2 term, leaving O(h^4).
 *  - GTOL: a few hundred float32 ulps of sum |g_i v_i| for the rounding of
 *    the float32 gradient itself.
 *  Agreement is ~1e-5 - 1e-3 in practice (printed per tensor); over 40 seeds
 *  the largest difference was 0.3 of the tolerance. Scaling every analytic
 *  gradient by 1.01 (ENTPROG_FD_SABOTAGE=1.01) fails every check of a live
 *  tensor but ~13 noise-limited ones (by 1.03, all but 4).
 * Exact checks: unused parameters (attn_t in image mode, the guider when every
 * pose is dropped, a skipped block) get a gradient of exactly 0, and the loss
 * does not move at all when they move. ENTPROG_FD_SEED=<n> changes the seed. */
#include "model/model.h"
#include "core/rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fd_check.h"


static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static float nz_normal(float std) {
    float v = std * rng_normal(&g_rng);
    if (fabsf(v) < 1e-3f * std) v = v < 0 ? -1e-3f * std : 1e-3f * std;
    return v;
}

static ModelShape small_shape(int L) {
    ModelShape s = {.F = 3, .C = 2, .H = 8, .W = 8, .p = 2, .D = 16, .NH = 2, .L = L, .mlp_ratio = 2,
                    .Cp = 3, .s = 2, .Cg = 4};
    return s;
}

/* Every tensor random: weights N(0, 1/fan_in), biases N(0, 0.2^2), never 0. */
static void fill_params(Model *m) {
    for (int i = 0; i < m->pt.n; i++) {
        const ParamInfo *p = &m->pt.info[i];
        float *w = m->params + p->offset;
        float std = p->ndim >= 2 ? 1.0f / sqrtf((float)(p->numel / (size_t)p->shape[0])) : 0.2f;
        for (size_t j = 0; j < p->numel; j++) w[j] = nz_normal(std);
    }
}

typedef struct {
    int B, F;
    size_t nx;
    float *x, *ref, *pose, *eps, *out, *deps;
    int *t;
    uint8_t *drop_ref, *drop_pose;
    Batch b;
} Inputs;

static void make_inputs(Inputs *in, const ModelShape *s, int B, int F, const uint8_t *dref, const uint8_t *dpose) {
    memset(in, 0, sizeof *in);
    in->B = B;
    in->F = F;
    size_t img = (size_t)s->C * s->H * s->W, pimg = (size_t)s->Cp * s->s * s->H * s->s * s->W;
    in->nx = (size_t)B * F * img;
    in->x = xcalloc(in->nx, sizeof(float));
    in->eps = xcalloc(in->nx, sizeof(float));
    in->out = xcalloc(in->nx, sizeof(float));
    in->deps = xcalloc(in->nx, sizeof(float));
    in->ref = xcalloc((size_t)B * img, sizeof(float));
    in->pose = xcalloc((size_t)B * F * pimg, sizeof(float));
    in->t = xcalloc((size_t)B, sizeof(int));
    in->drop_ref = xcalloc((size_t)B, 1);
    in->drop_pose = xcalloc((size_t)B, 1);
    for (size_t i = 0; i < in->nx; i++) in->x[i] = nz_normal(1.0f);
    for (size_t i = 0; i < in->nx; i++) in->eps[i] = nz_normal(1.0f);
    for (size_t i = 0; i < (size_t)B * img; i++) in->ref[i] = nz_normal(1.0f);
    for (size_t i = 0; i < (size_t)B * F * pimg; i++) in->pose[i] = 0.001f + 0.998f * rng_uniform(&g_rng);
    for (int i = 0; i < B; i++) {
        in->t[i] = (int)rng_below(&g_rng, 1000);
        in->drop_ref[i] = dref ? dref[i] : 0;
        in->drop_pose[i] = dpose ? dpose[i] : 0;
    }
    in->b = (Batch){in->x, in->t, in->ref, in->pose, in->drop_ref, in->drop_pose};
}

static void free_inputs(Inputs *in) {
    free(in->x); free(in->eps); free(in->out); free(in->deps); free(in->ref); free(in->pose);
    free(in->t); free(in->drop_ref); free(in->drop_pose);
}

/* Loss at the current parameters; *ns gets the noise scale (2/n) sum |e_i| |eps_hat_i|. */
static double loss_at(Model *m, Inputs *in, double *ns) {
    model_forward(m, &in->b, in->out);
    double L = mse_loss(in->out, in->eps, NULL, in->nx);
    if (ns) {
        double s = 0;
        for (size_t i = 0; i < in->nx; i++) s += fabs((double)in->out[i] - in->eps[i]) * fabs((double)in->out[i]);
        *ns = 2 * s / (double)in->nx;
    }
    return L;
}

/* m->grads = d loss / d params at the current parameters. */
static double compute_grads(Model *m, Inputs *in) {
    memset(m->grads, 0, m->pt.total * sizeof(float));
    model_forward(m, &in->b, in->out);
    double L = mse_loss(in->out, in->eps, in->deps, in->nx);
    model_backward(m, &in->b, in->deps);
    return L;
}

/* One central difference of the loss along d over the flat parameter range
 * [off, off+n), with the analytic g . (applied perturbation) / 2h it
 * estimates, the noise scale and sum |g_i (applied perturbation)_i| / 2h. */
static double central(Model *m, Inputs *in, size_t off, size_t n, const double *d, double h, double *analytic,
                      double *ns, double *gabs, int *moved) {
    float *p = m->params + off, *g = m->grads + off;
    float *p0 = xcalloc(n, sizeof(float));
    memcpy(p0, p, n * sizeof(float));
    double a = 0, ga = 0, nsp, nsm;
    for (size_t i = 0; i < n; i++) p[i] = (float)(p0[i] + h * d[i]);
    double Lp = loss_at(m, in, &nsp);
    for (size_t i = 0; i < n; i++) {
        float xp = p[i];
        p[i] = (float)(p0[i] - h * d[i]);
        a += (double)g[i] * ((double)xp - (double)p[i]);
        ga += fabs((double)g[i] * ((double)xp - (double)p[i]));
    }
    double Lm = loss_at(m, in, &nsm);
    memcpy(p, p0, n * sizeof(float));
    free(p0);
    *analytic = a / (2 * h);
    *ns = nsp > nsm ? nsp : nsm;
    *gabs = ga / (2 * h);
    *moved = Lp != Lm;
    return (Lp - Lm) / (2 * h);
}

/* Compares g . d with the Richardson combination (4 D(h) - D(2h)) / 3 of
 * central differences at h and 2h (cancels the h^2 truncation term). */
static int fd_range(Model *m, Inputs *in, size_t off, size_t n, const double *d, const char *cfg, const char *name,
                    int expect_unused) {
    FdProbe p1, p2;
    int mv1, mv2;
    p1.dN = central(m, in, off, n, d, FD_H, &p1.a, &p1.s, &p1.ga, &mv1);
    p2.dN = central(m, in, off, n, d, 2 * FD_H, &p2.a, &p2.s, &p2.ga, &mv2);
    FdVerdict v = fd_verdict(p1, p2);
    double analytic = v.analytic, numeric = v.numeric, scale = v.scale, diff = v.diff, tol = v.tol;
    int ok;
    if (expect_unused) {
        /* never read: exactly zero gradient and no change of the loss at all */
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(m->grads[off + i]));
        ok = gmax == 0 && !mv1 && !mv2;
    } else {
        ok = diff <= tol && scale > 0;
    }
    g_checks++;
    if (!ok) g_fail++;
    printf("[%s] %-34s analytic % .9e numeric % .9e rel %.2e%s %s\n", cfg, name, analytic, numeric,
           scale > 0 ? diff / scale : 0.0, expect_unused ? " (unused: exact 0)" : "", ok ? "ok" : "FAIL");
    return ok;
}

/* Is tensor i expected to be unread in this configuration? */
typedef int (*UnusedFn)(const Model *m, int i, const Inputs *in);

static int unused_none(const Model *m, int i, const Inputs *in) {
    (void)m; (void)i; (void)in;
    return 0;
}

static int block_of_skip0(const Model *m, int i, const Inputs *in) {
    (void)in;
    return m->pt.info[i].block == 0;
}

static int unused_image(const Model *m, int i, const Inputs *in) {
    (void)in;
    const ParamInfo *p = &m->pt.info[i];
    return p->block >= 0 && strstr(p->name, ".attn_t.") != NULL;
}

static int unused_all_dropped(const Model *m, int i, const Inputs *in) {
    (void)in;
    return strncmp(m->pt.info[i].name, "pose_guider.", 12) == 0;
}

/* One configuration: gradients, one random direction per tensor, one over all
 * parameters, and the accumulate contract of model_backward. */
static void run_config(Model *m, Inputs *in, const char *cfg, UnusedFn unused) {
    compute_grads(m, in);
    if (g_sabotage != 1.0) /* sabotage also touches exact-zero checks: a non-zero gradient must fail them */
        for (size_t i = 0; i < m->pt.total; i++) m->grads[i] = m->grads[i] * (float)g_sabotage + (m->grads[i] == 0 ? 1e-30f : 0);
    double *d = xcalloc(m->pt.total, sizeof(double));
    for (int t = 0; t < m->pt.n; t++) {
        const ParamInfo *p = &m->pt.info[t];
        const float *w = m->params + p->offset;
        double rms = 0;
        for (size_t i = 0; i < p->numel; i++) rms += (double)w[i] * w[i];
        rms = sqrt(rms / (double)p->numel);
        for (size_t i = 0; i < p->numel; i++) d[i] = rms * rng_normal(&g_rng);
        fd_range(m, in, p->offset, p->numel, d, cfg, p->name, unused(m, t, in));
    }
    /* all parameters at once, each tensor's step scaled by its rms */
    for (int t = 0; t < m->pt.n; t++) {
        const ParamInfo *p = &m->pt.info[t];
        const float *w = m->params + p->offset;
        double rms = 0;
        for (size_t i = 0; i < p->numel; i++) rms += (double)w[i] * w[i];
        rms = sqrt(rms / (double)p->numel);
        for (size_t i = 0; i < p->numel; i++) d[p->offset + i] = rms * rng_normal(&g_rng);
    }
    fd_range(m, in, 0, m->pt.total, d, cfg, "(all parameters)", 0);
    free(d);

    /* model_backward accumulates: a second call without zeroing doubles m->grads
     * (this also fails if backward clobbers the forward activations it reads) */
    compute_grads(m, in);
    float *g1 = xcalloc(m->pt.total, sizeof(float));
    memcpy(g1, m->grads, m->pt.total * sizeof(float));
    model_backward(m, &in->b, in->deps);
    double err = 0, gmax = 0;
    for (size_t i = 0; i < m->pt.total; i++) gmax = fmax(gmax, fabs(g1[i]));
    for (size_t i = 0; i < m->pt.total; i++) err = fmax(err, fabs(m->grads[i] - 2.0 * g1[i]) / gmax);
    char name[128];
    snprintf(name, sizeof name, "[%s] model_backward accumulates (2nd call = 2x)", cfg);
    report_max(name, err, 1e-5);
    free(g1);
}

/* ---------------------------------------------------------------- skip */

/* Copies into m1 (L = 1) the shared tensors of m2 and block `kept` of m2 as block 0. */
static void copy_as_l1(Model *m1, const Model *m2, int kept) {
    for (int i = 0; i < m1->pt.n; i++) {
        const ParamInfo *p = &m1->pt.info[i];
        char name[PARAM_NAME_MAX];
        if (strncmp(p->name, "blocks.0.", 9) == 0) snprintf(name, sizeof name, "blocks.%d.%s", kept, p->name + 9);
        else snprintf(name, sizeof name, "%s", p->name);
        int j = param_find(&m2->pt, name);
        if (j < 0 || m2->pt.info[j].numel != p->numel) { fprintf(stderr, "no tensor %s\n", name); exit(2); }
        memcpy(m1->params + p->offset, m2->params + m2->pt.info[j].offset, p->numel * sizeof(float));
    }
}

/* skip[skipped] = 1 in an L = 2 model must equal the L = 1 model made of the
 * other block: same eps_hat, same gradients of every shared tensor and of the
 * kept block, exactly zero gradient for the skipped block, and eps_hat
 * independent of the skipped block's parameters. */
static void test_skip(int skipped, const uint8_t *dref, const uint8_t *dpose, const char *cfg) {
    ModelShape s2 = small_shape(2), s1 = small_shape(1);
    int B = 2, F = s2.F, kept = 1 - skipped;
    Model m2, m1;
    model_create(&m2, &s2);
    model_set_batch(&m2, B, F);
    model_create(&m1, &s1);
    model_set_batch(&m1, B, F);
    fill_params(&m2);
    copy_as_l1(&m1, &m2, kept);
    int skip[2] = {0, 0};
    skip[skipped] = 1;
    m2.skip = skip;
    Inputs in;
    make_inputs(&in, &s2, B, F, dref, dpose);
    char name[160];

    /* forward and gradients of both models */
    compute_grads(&m2, &in);
    float *out2 = xcalloc(in.nx, sizeof(float));
    memcpy(out2, in.out, in.nx * sizeof(float));
    compute_grads(&m1, &in);
    double err = 0, omax = 0;
    int bitwise = memcmp(out2, in.out, in.nx * sizeof(float)) == 0;
    for (size_t i = 0; i < in.nx; i++) {
        err = fmax(err, fabs(out2[i] - in.out[i]));
        omax = fmax(omax, fabs(in.out[i]));
    }
    snprintf(name, sizeof name, "[%s] eps_hat = L=1 model of block %d (%s)", cfg, kept, bitwise ? "bitwise" : "not bitwise");
    report_max(name, err / omax, 1e-6);

    double gerr = 0, zmax = 0;
    for (int i = 0; i < m1.pt.n; i++) {
        const ParamInfo *p = &m1.pt.info[i];
        char nm[PARAM_NAME_MAX];
        if (strncmp(p->name, "blocks.0.", 9) == 0) snprintf(nm, sizeof nm, "blocks.%d.%s", kept, p->name + 9);
        else snprintf(nm, sizeof nm, "%s", p->name);
        const ParamInfo *q = &m2.pt.info[param_find(&m2.pt, nm)];
        double gm = 0, e = 0;
        for (size_t j = 0; j < p->numel; j++) gm = fmax(gm, fabs(m1.grads[p->offset + j]));
        for (size_t j = 0; j < p->numel; j++) e = fmax(e, fabs(m1.grads[p->offset + j] - m2.grads[q->offset + j]));
        if (gm > 0) e /= gm;
        gerr = fmax(gerr, e);
    }
    snprintf(name, sizeof name, "[%s] gradients = those of the L=1 model", cfg);
    report_max(name, gerr, 1e-5);
    for (int k = 0; k < BP_COUNT; k++) {
        const ParamInfo *p = param_block(&m2.pt, skipped, k);
        for (size_t j = 0; j < p->numel; j++) zmax = fmax(zmax, fabs(m2.grads[p->offset + j]));
    }
    snprintf(name, sizeof name, "[%s] gradient of skipped block %d is exactly 0", cfg, skipped);
    report_max(name, zmax, 0);

    /* eps_hat does not depend on the skipped block's parameters */
    const ParamInfo *b0 = param_block(&m2.pt, skipped, 0);
    size_t off = b0->offset, len = m2.pt.block_stride;
    for (size_t j = 0; j < len; j++) m2.params[off + j] = nz_normal(3.0f);
    model_forward(&m2, &in.b, in.out);
    err = 0;
    for (size_t i = 0; i < in.nx; i++) err = fmax(err, fabs(out2[i] - in.out[i]));
    snprintf(name, sizeof name, "[%s] eps_hat independent of block %d's parameters", cfg, skipped);
    report_max(name, err, 0);

    free(out2);
    free_inputs(&in);
    model_destroy(&m1);
    model_destroy(&m2);
}

int main(void) {
    const char *sab = getenv("ENTPROG_FD_SABOTAGE");
    if (sab && *sab) {
        g_sabotage = atof(sab);
        printf("SABOTAGE: analytic gradients scaled by %g; every gradient check should FAIL\n", g_sabotage);
    }
    const char *seed = getenv("ENTPROG_FD_SEED"); /* another seed, to probe the tolerances */
    rng_seed(&g_rng, seed && *seed ? strtoull(seed, NULL, 10) : 424242u);
    ModelShape shape = small_shape(2);
    int B = 2;
    Model m;
    model_create(&m, &shape);
    fill_params(&m);

    static const uint8_t d10[2] = {1, 0}, d01[2] = {0, 1}, d11[2] = {1, 1};
    Inputs in;

    model_set_batch(&m, B, shape.F);
    make_inputs(&in, &m.shape, B, shape.F, NULL, NULL);
    run_config(&m, &in, "video", unused_none);
    free_inputs(&in);

    make_inputs(&in, &m.shape, B, shape.F, d10, d01);
    run_config(&m, &in, "video drop_ref=[1,0] drop_pose=[0,1]", unused_none);
    free_inputs(&in);

    make_inputs(&in, &m.shape, B, shape.F, d11, d11);
    run_config(&m, &in, "video all dropped", unused_all_dropped);
    free_inputs(&in);

    int skip0[2] = {1, 0};
    m.skip = skip0;
    make_inputs(&in, &m.shape, B, shape.F, NULL, NULL);
    run_config(&m, &in, "video skip[0]=1", block_of_skip0);
    free_inputs(&in);
    m.skip = NULL;

    model_set_batch(&m, B, 1);
    make_inputs(&in, &m.shape, B, 1, NULL, NULL);
    run_config(&m, &in, "image F=1", unused_image);
    free_inputs(&in);
    model_destroy(&m);

    test_skip(0, NULL, NULL, "skip[0]=1 video");
    test_skip(0, d10, d01, "skip[0]=1 drops");
    test_skip(1, NULL, NULL, "skip[1]=1 video");

    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}

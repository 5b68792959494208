/* DDIM and GIF unit tests (label: sample).
 *   test_sample ddim       analytic denoisers: x0 recovery, guidance, respacing, eta noise
 *   test_sample gif DIR    writes GIFs with known indices for check_media.py to decode */
#include "sample/ddim.h"
#include "core/die.h"
#include "media/gif_write.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

/* ---- analytic denoisers ---- */

/* eps_hat = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t): the true noise of a known x0. */
typedef struct {
    const Diffusion *d;
    const float *x0;    /* [per], the same clean signal in every row */
    int B;
    size_t per;
    int calls[2];       /* unconditional, conditional */
} Oracle;

static void oracle(void *ctx, const float *x, const int *t, int cond, float *eps) {
    Oracle *o = ctx;
    o->calls[cond ? 1 : 0]++;
    for (int i = 0; i < o->B; i++) {
        double a = sqrt(o->d->abar[t[i]]), s = sqrt(1.0 - o->d->abar[t[i]]);
        for (size_t j = 0; j < o->per; j++)
            eps[i * o->per + j] = (float)((x[i * o->per + j] - a * o->x0[j]) / s);
    }
}

/* A toy whose two passes differ: cond -> 0.5 x + 0.1 t/1000, uncond -> -0.25 x + 0.3. */
typedef struct {
    int B;
    size_t per;
    int calls[2];
} Toy;

static float toy_value(float x, int t, int cond) { return cond ? 0.5f * x + 0.1f * t / 1000.f : -0.25f * x + 0.3f; }

static void toy(void *ctx, const float *x, const int *t, int cond, float *eps) {
    Toy *m = ctx;
    m->calls[cond ? 1 : 0]++;
    for (int i = 0; i < m->B; i++)
        for (size_t j = 0; j < m->per; j++) eps[i * m->per + j] = toy_value(x[i * m->per + j], t[i], cond);
}

/* ---- tests ---- */

static void fill_noise(float *x, size_t n, Rng *rngs, int B, size_t per, uint64_t seed) {
    for (int i = 0; i < B; i++) {
        rng_seed_stream(&rngs[i], seed, 100 + (uint64_t)i);
        for (size_t j = 0; j < per; j++) x[i * per + j] = rng_normal(&rngs[i]);
    }
    (void)n;
}

static double max_err_to_x0(const float *x, const float *x0, int B, size_t per) {
    double e = 0;
    for (int i = 0; i < B; i++)
        for (size_t j = 0; j < per; j++) e = fmax(e, fabs((double)x[i * per + j] - x0[j]));
    return e;
}

static void test_respacing(void) {
    static const int sizes[] = {1, 2, 3, 4, 5, 7, 10, 25, 50, 100, 250, 333, 500, 999, 1000};
    int ts[DIFFUSION_T];
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int S = sizes[k], ok = 1;
        ddim_timesteps(S, ts);
        ok &= ts[0] == DIFFUSION_T - 1;
        ok &= S == 1 || ts[S - 1] == 0;
        for (int i = 0; i < S; i++) ok &= ts[i] >= 0 && ts[i] < DIFFUSION_T && (i == 0 || ts[i] < ts[i - 1]);
        /* evenly spaced: every gap is floor or ceil of 999/(S-1) */
        for (int i = 1; S > 1 && i < S; i++) {
            int gap = ts[i - 1] - ts[i], lo = 999 / (S - 1);
            ok &= gap == lo || gap == lo + 1;
        }
        char what[96];
        snprintf(what, sizeof what, "respacing S=%d: strictly decreasing in [0,999], first 999, last 0, even gaps", S);
        check(ok, what);
    }
    ddim_timesteps(5, ts);
    check(ts[0] == 999 && ts[1] == 749 && ts[2] == 500 && ts[3] == 250 && ts[4] == 0,
          "respacing S=5 is {999, 749, 500, 250, 0} (749.25 -> 749, 499.5 -> 500, 249.75 -> 250)");
    ddim_timesteps(1000, ts);
    int all = 1;
    for (int i = 0; i < 1000; i++) all &= ts[i] == 999 - i;
    check(all, "respacing S=1000 is every step 999..0");
}

static void test_recovers_x0(const Diffusion *d, double eta, int S, double clip) {
    enum { B = 3, PER = 64 };
    float x0[PER], x[B * PER];
    Rng rngs[B];
    for (int j = 0; j < PER; j++) x0[j] = (float)sin(0.37 * j) * 0.9f;
    fill_noise(x, B * PER, rngs, B, PER, 7);
    Oracle o = {d, x0, B, PER, {0, 0}};
    DdimConfig c = {S, eta, 1.0, clip};
    DdimModel m = {oracle, &o, NULL, NULL};
    ddim_sample(d, &c, &m, B, PER, x, rngs);
    double e = max_err_to_x0(x, x0, B, PER);
    /* one step from t = 999 divides the float eps_hat's rounding by sqrt(abar_999) = 0.0064 */
    double tol = S == 1 ? 5e-5 : 1e-5;
    char what[128];
    snprintf(what, sizeof what, "eta=%g S=%d clip=%g on the exact-noise model returns x0 (max error %.2e <= %g)", eta, S,
             clip, e, tol);
    check(e <= tol, what);
    snprintf(what, sizeof what, "eta=%g S=%d: guidance 1 calls the conditional pass %d times, unconditional %d",
             eta, S, o.calls[1], o.calls[0]);
    check(o.calls[1] == S && o.calls[0] == 0, what);
}

static void test_guidance(void) {
    enum { B = 2, PER = 5 };
    float x[B * PER], eps[B * PER], scratch[B * PER];
    int t[B] = {999, 17};
    for (int j = 0; j < B * PER; j++) x[j] = 0.3f * j - 1.f;
    Toy toy_m = {B, PER, {0, 0}};
    DdimModel m = {toy, &toy_m, NULL, NULL};

    ddim_guided_eps(&m, 1.0, x, t, B, PER, eps, scratch);
    int exact = 1;
    for (int j = 0; j < B * PER; j++) exact &= eps[j] == toy_value(x[j], t[j / PER], 1);
    check(exact && toy_m.calls[0] == 0 && toy_m.calls[1] == 1,
          "guidance 1: exactly the conditional prediction, unconditional pass not called");

    memset(toy_m.calls, 0, sizeof toy_m.calls);
    ddim_guided_eps(&m, 0.0, x, t, B, PER, eps, scratch);
    exact = 1;
    for (int j = 0; j < B * PER; j++) exact &= eps[j] == toy_value(x[j], t[j / PER], 0);
    check(exact && toy_m.calls[1] == 0 && toy_m.calls[0] == 1,
          "guidance 0: exactly the unconditional prediction, conditional pass not called");

    const double ws[] = {2.5, -0.5, 7.0};
    for (size_t k = 0; k < sizeof ws / sizeof *ws; k++) {
        memset(toy_m.calls, 0, sizeof toy_m.calls);
        ddim_guided_eps(&m, ws[k], x, t, B, PER, eps, scratch);
        double err = 0;
        for (int j = 0; j < B * PER; j++) {
            double c = toy_value(x[j], t[j / PER], 1), u = toy_value(x[j], t[j / PER], 0);
            err = fmax(err, fabs(eps[j] - (u + ws[k] * (c - u))));
        }
        char what[128];
        snprintf(what, sizeof what, "guidance %g: eps = eps_u + w (eps_c - eps_u) (max error %.1e), one call of each pass",
                 ws[k], err);
        check(err < 1e-6 && toy_m.calls[0] == 1 && toy_m.calls[1] == 1, what);
    }
}

/* Captures x after the first step, to check one update against the formula. */
typedef struct {
    float *x, *after_first;
    size_t n;
} Snap;

static void snap_hook(void *ctx, int k, int S) {
    Snap *s = ctx;
    (void)S;
    if (k == 0) memcpy(s->after_first, s->x, s->n * sizeof(float));
}

static void test_eta_noise(const Diffusion *d) {
    enum { B = 2, PER = 16, S = 4 };
    float x[B * PER], x_start[B * PER], again[B * PER], first[B * PER];
    Rng rngs[B], start[B], copy[B];
    fill_noise(x, B * PER, rngs, B, PER, 11);
    memcpy(x_start, x, sizeof x);
    memcpy(start, rngs, sizeof rngs);
    Toy toy_m = {B, PER, {0, 0}};
    Snap snap = {x, first, B * PER};
    DdimModel m = {toy, &toy_m, snap_hook, &snap};
    DdimConfig c = {S, 0.7, 3.0, 0.0};
    ddim_sample(d, &c, &m, B, PER, x, rngs);

    /* the first step by hand, in double, with z drawn from a copy of each row's stream */
    int ts[S];
    ddim_timesteps(S, ts);
    double ab = d->abar[ts[0]], abp = d->abar[ts[1]];
    double sigma = c.eta * sqrt((1 - abp) / (1 - ab)) * sqrt(1 - ab / abp);
    double err = 0;
    memcpy(copy, start, sizeof copy);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < PER; j++) {
            float xv = x_start[i * PER + j];
            double ec = toy_value(xv, ts[0], 1), eu = toy_value(xv, ts[0], 0), e = (float)(eu + 3.0 * (ec - eu));
            double x0 = (xv - sqrt(1 - ab) * e) / sqrt(ab);
            double want = sqrt(abp) * x0 + sqrt(1 - abp - sigma * sigma) * e + sigma * rng_normal(&copy[i]);
            err = fmax(err, fabs(want - first[i * PER + j]));
        }
    char what[128];
    snprintf(what, sizeof what, "eta 0.7, guidance 3: the first step equals the formula with the row's seeded z (max error %.1e)", err);
    check(err < 1e-5, what);

    /* each row's stream advanced by one normal per element per step with sigma > 0 (all but the last) */
    memcpy(copy, start, sizeof copy);
    int same = 1;
    for (int i = 0; i < B; i++) {
        for (int k = 0; k < (S - 1) * PER; k++) rng_normal(&copy[i]);
        same &= !memcmp(copy[i].s, rngs[i].s, sizeof copy[i].s);
    }
    check(same, "eta > 0 draws exactly (S-1) x per normals from each row's stream (none at the last step)");

    memcpy(again, x_start, sizeof again);
    memcpy(rngs, start, sizeof rngs);
    m.hook = NULL;
    ddim_sample(d, &c, &m, B, PER, again, rngs);
    check(!memcmp(again, x, sizeof x), "eta > 0: the same seeds give bit-identical samples");

    /* row 1 alone in a batch of one gives the same bits: no row sees another's noise */
    Toy toy1 = {1, PER, {0, 0}};
    DdimModel m1 = {toy, &toy1, NULL, NULL};
    float one[PER];
    Rng r1 = start[1];
    memcpy(one, x_start + PER, sizeof one);
    ddim_sample(d, &c, &m1, 1, PER, one, &r1);
    check(!memcmp(one, x + PER, sizeof one), "eta > 0: a row's sample does not depend on the rest of its batch");

    memcpy(again, x_start, sizeof again);
    for (int i = 0; i < B; i++) rng_seed_stream(&rngs[i], 12345, 100 + (uint64_t)i);
    ddim_sample(d, &c, &m, B, PER, again, rngs);
    check(memcmp(again, x, sizeof x) != 0, "eta > 0: other seeds give another sample");
}

/* eps_hat = 0 everywhere: x0_hat = x_t / sqrt(abar_t), far outside [-1, 1] at t = 999. */
static void zero_eps(void *ctx, const float *x, const int *t, int cond, float *eps) {
    (void)x, (void)t, (void)cond;
    memset(eps, 0, *(const size_t *)ctx * sizeof(float));
}

static void test_clip(const Diffusion *d) {
    enum { PER = 32 };
    float x[PER], x_start[PER], first[PER];
    Rng r;
    fill_noise(x, PER, &r, 1, PER, 5);
    memcpy(x_start, x, sizeof x);
    size_t n = PER;
    DdimModel m = {zero_eps, &n, NULL, NULL};
    DdimConfig one = {1, 0.0, 1.0, 1.0};
    ddim_sample(d, &one, &m, 1, PER, x, &r);
    int ok = 1;
    for (int j = 0; j < PER; j++) ok &= x[j] == (x_start[j] > 0 ? 1.0f : -1.0f);
    check(ok, "clip 1, one step: x0_hat clamped to +-1 exactly");

    /* three steps: the first by hand, with eps re-derived from the clamped x0_hat */
    memcpy(x, x_start, sizeof x);
    Snap snap = {x, first, PER};
    DdimModel ms = {zero_eps, &n, snap_hook, &snap};
    DdimConfig three = {3, 0.0, 1.0, 1.0};
    ddim_sample(d, &three, &ms, 1, PER, x, &r);
    int ts[3];
    ddim_timesteps(3, ts);
    double ab = d->abar[ts[0]], abp = d->abar[ts[1]], err = 0;
    for (int j = 0; j < PER; j++) {
        double x0 = x_start[j] / sqrt(ab);
        x0 = x0 > 1 ? 1 : x0 < -1 ? -1 : x0;
        double e = (x_start[j] - sqrt(ab) * x0) / sqrt(1 - ab);
        err = fmax(err, fabs(sqrt(abp) * x0 + sqrt(1 - abp) * e - first[j]));
    }
    char what[128];
    snprintf(what, sizeof what, "clip 1: a clamped step uses eps = (x_t - sqrt(abar) x0_clamped)/sqrt(1-abar) (max error %.1e)", err);
    check(err < 1e-6, what);
    double worst = 0;
    for (int j = 0; j < PER; j++) worst = fmax(worst, fabs(x[j]));
    snprintf(what, sizeof what, "clip 1: the sample stays in [-1, 1] (max |x| %.3f)", worst);
    check(worst <= 1.0, what);
}

static int run_ddim(void) {
    Diffusion d;
    diffusion_init(&d);
    test_respacing();
    test_recovers_x0(&d, 0.0, 1, 0.0);
    test_recovers_x0(&d, 0.0, 10, 0.0);
    test_recovers_x0(&d, 0.0, 50, 0.0);
    test_recovers_x0(&d, 0.0, 1000, 0.0);
    test_recovers_x0(&d, 1.0, 25, 0.0);
    test_recovers_x0(&d, 0.0, 10, 1.0); /* x0 inside [-1, 1]: the clamp never engages */
    test_clip(&d);
    test_guidance();
    test_eta_noise(&d);
    return failures ? 1 : 0;
}

/* ---- GIF fixtures: the indices come from a generator check_media.py repeats ---- */

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* noise.gif: 97 x 61, 3 frames of pseudo-random indices in [0, 256) (the LZW
 * table fills and clears many times); ramp.gif: 300 x 5, 2 frames of long runs. */
static int run_gif(const char *dir) {
    char path[1024];
    uint8_t pal[768];
    gif_cube_palette(pal);
    GifWriter g;
    snprintf(path, sizeof path, "%s/noise.gif", dir);
    gif_open(&g, path, 97, 61, pal);
    uint32_t s = 2024;
    uint8_t *idx = malloc(300 * 61);
    for (int f = 0; f < 3; f++) {
        for (int j = 0; j < 97 * 61; j++) idx[j] = (uint8_t)(lcg(&s) & 255);
        gif_add_frame(&g, idx, 7 + f);
    }
    gif_close(&g);
    snprintf(path, sizeof path, "%s/ramp.gif", dir);
    gif_open(&g, path, 300, 5, pal);
    for (int f = 0; f < 2; f++) {
        for (int j = 0; j < 300 * 5; j++) idx[j] = (uint8_t)((j / 37 + f * 3) % 252);
        gif_add_frame(&g, idx, 10);
    }
    gif_close(&g);
    free(idx);
    printf("wrote %s/noise.gif and %s/ramp.gif\n", dir, dir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "ddim")) return run_ddim();
    if (argc >= 3 && !strcmp(argv[1], "gif")) return run_gif(argv[2]);
    fprintf(stderr, "usage: test_sample ddim | gif DIR\n");
    return 2;
}

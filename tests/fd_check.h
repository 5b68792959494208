/* Shared by the finite-difference tests (test_ops.c, test_model_fd.c): the
 * tolerances, the pass/fail counters, and the verdict on one directional
 * derivative. Each test explains the tolerance in its header comment:
 * Richardson-extrapolated central differences at h and 2h, float32 rounding
 * of the loss (`noise`), float32 rounding of the gradient (GTOL), RTOL on top. */
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define RTOL 1e-3
#define FD_H 1e-2
#define NOISE_ULPS 2.0
#define GTOL 2e-5

static Rng g_rng;
static int g_fail, g_checks;
static double g_sabotage = 1.0;

/* A pass/fail line for a forward-value or contract check: err against tol. */
static void report_max(const char *name, double err, double tol) {
    g_checks++;
    int ok = err <= tol;
    if (!ok) g_fail++;
    printf("%-64s max err %.3e (tol %.1e) %s\n", name, err, tol, ok ? "ok" : "FAIL");
}

/* One central difference dN with the matching analytic value a, the loss's
 * sum of |terms| s (its float32 noise) and sum |g_i v_i| ga, at step h. */
typedef struct { double dN, a, s, ga; } FdProbe;

typedef struct { double analytic, numeric, diff, scale, tol; } FdVerdict;

/* Combines the probes at h and 2h as (4 D(h) - D(2h)) / 3 and sets the tolerance. */
static FdVerdict fd_verdict(FdProbe p1, FdProbe p2) {
    FdVerdict v;
    v.numeric = (4 * p1.dN - p2.dN) / 3;
    v.analytic = (4 * p1.a - p2.a) / 3;
    /* NOISE_ULPS ulps of sum|terms| per loss evaluation, over 2h; the combination scales it by at most 1.5 */
    double noise = 1.5 * NOISE_ULPS * ldexp(1.0, -24) * (p1.s > p2.s ? p1.s : p2.s) / (2 * FD_H);
    v.scale = fmax(fabs(v.analytic), fabs(v.numeric));
    v.diff = fabs(v.analytic - v.numeric);
    v.tol = RTOL * v.scale + noise + GTOL * p1.ga;
    if (getenv("FDDBG"))
        printf("   plain D(h) rel %.2e  diff %.3e noise %.3e rtol-part %.3e gtol-part %.3e\n",
               fabs(p1.dN - p1.a) / fmax(fabs(p1.a), 1e-300), v.diff, noise, RTOL * v.scale, GTOL * p1.ga);
    return v;
}

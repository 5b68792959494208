/* DDIM sampling (Song et al. 2021) on a respaced subset of the T = 1000 DDPM
 * steps of diffusion.h, with classifier-free guidance. The network is reached
 * through a function pointer, so tests can plug in an analytic denoiser.
 * Formulas and the respacing rule: docs/sampling.md. */
#pragma once
#include <stddef.h>
#include "model/diffusion.h"
#include "core/rng.h"

/* eps_hat [B, per] for x [B, per] at timesteps t [B]; cond = 1: conditioned
 * on reference and pose, cond = 0: both dropped (drop_ref = drop_pose = 1). */
typedef void (*DdimDenoise)(void *ctx, const float *x, const int *t, int cond, float *eps_hat);

/* Called after step k (0-based) of S, e.g. for progress lines. */
typedef void (*DdimStepHook)(void *ctx, int k, int S);

typedef struct {
    int steps;        /* S in [1, DIFFUSION_T] */
    double eta;       /* 0: deterministic DDIM; 1: DDPM-like posterior noise */
    double guidance;  /* w: eps = eps_u + w (eps_c - eps_u); 1 skips the unconditional pass */
    double clip;      /* > 0: x0_hat clamped to [-clip, clip] (eps re-derived from it); 0: off */
} DdimConfig;

typedef struct {
    DdimDenoise denoise;
    void *ctx;
    DdimStepHook hook; /* may be NULL */
    void *hook_ctx;
} DdimModel;

/* ts[0..S-1]: round(i * 999 / (S-1)) for i = S-1 .. 0 (half rounds up), so
 * ts[0] = 999 and ts[S-1] = 0, strictly decreasing; S = 1 gives {999}.
 * Dies when S is outside [1, DIFFUSION_T]. */
void ddim_timesteps(int S, int *ts);

/* Checks steps, eta >= 0, a finite guidance and clip >= 0; dies naming `who`'s options. */
void ddim_check(const DdimConfig *c, const char *who);

/* Guided noise estimate of B rows at timesteps t: calls the conditional pass
 * unless w == 0 and the unconditional one unless w == 1. scratch: B*per floats. */
void ddim_guided_eps(const DdimModel *m, double w, const float *x, const int *t, int B, size_t per,
                     float *eps, float *scratch);

/* Runs the S steps in place: x [B, per] holds x_T (pure noise) on entry and
 * x_0 on return. rng[i] is row i's own stream (eta > 0 draws its noise from
 * it, in element order, after each step's prediction), so a row's result does
 * not depend on which other rows share its batch. */
void ddim_sample(const Diffusion *d, const DdimConfig *c, const DdimModel *m, int B, size_t per, float *x,
                 Rng *rng);

/* DDIM sampling with classifier-free guidance (ddim.h). All per-element
 * arithmetic is in double; x is stored as float between steps. */
#include "sample/ddim.h"
#include "core/die.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ddim_timesteps(int S, int *ts) {
    if (S < 1 || S > DIFFUSION_T) ep_die("ddim: %d steps outside [1, %d]", S, DIFFUSION_T);
    if (S == 1) { /* one step from pure noise: start where the noise is */
        ts[0] = DIFFUSION_T - 1;
        return;
    }
    long long last = DIFFUSION_T - 1, den = 2LL * (S - 1);
    for (int i = 0; i < S; i++) {
        long long j = S - 1 - i; /* evenly spaced j * 999 / (S-1), half up, in exact integers */
        ts[i] = (int)((2 * j * last + (S - 1)) / den);
    }
}

void ddim_check(const DdimConfig *c, const char *who) {
    if (c->steps < 1 || c->steps > DIFFUSION_T)
        ep_die("%s: --steps %d outside [1, %d] (DDIM steps out of the %d of training)", who, c->steps, DIFFUSION_T,
               DIFFUSION_T);
    if (!(c->eta >= 0) || !isfinite(c->eta)) ep_die("%s: --eta %g must be a finite number >= 0", who, c->eta);
    if (!isfinite(c->guidance)) ep_die("%s: --guidance %g must be finite", who, c->guidance);
    if (!(c->clip >= 0) || !isfinite(c->clip)) ep_die("%s: --clip %g must be a finite number >= 0 (0: off)", who, c->clip);
}

void ddim_guided_eps(const DdimModel *m, double w, const float *x, const int *t, int B, size_t per,
                     float *eps, float *scratch) {
    size_t n = (size_t)B * per;
    /* w = 1 and w = 0 are one pass each, and exactly that pass's prediction */
    if (w == 1.0) {
        m->denoise(m->ctx, x, t, 1, eps);
        return;
    }
    if (w == 0.0) {
        m->denoise(m->ctx, x, t, 0, eps);
        return;
    }
    m->denoise(m->ctx, x, t, 1, eps);
    m->denoise(m->ctx, x, t, 0, scratch);
    for (size_t j = 0; j < n; j++) eps[j] = (float)(scratch[j] + w * ((double)eps[j] - scratch[j]));
}

/* Coefficients of one update from abar_t to abar_prev (abar_prev = 1 after the last step). */
typedef struct {
    double inv_sqrt_ab, sqrt_ab, sqrt_1m_ab, sqrt_abp, dir, sigma, clip;
} StepCoef;

static StepCoef step_coef(double ab, double abp, double eta, double clip) {
    StepCoef k;
    k.clip = clip;
    k.sqrt_ab = sqrt(ab);
    k.inv_sqrt_ab = 1.0 / sqrt(ab);
    k.sqrt_1m_ab = sqrt(1.0 - ab);
    k.sqrt_abp = sqrt(abp);
    k.sigma = eta * sqrt((1.0 - abp) / (1.0 - ab)) * sqrt(1.0 - ab / abp);
    double d2 = 1.0 - abp - k.sigma * k.sigma;
    k.dir = d2 > 0 ? sqrt(d2) : 0.0; /* rounding can push 1 - abp - sigma^2 a hair below 0 */
    return k;
}

/* x <- sqrt(abp) x0_hat + dir eps + sigma z for one row. A clamped x0_hat
 * comes with the eps that explains x_t from it, as IDDPM's clipped DDIM does;
 * an unclamped one keeps the model's eps bit for bit. */
static void update_row(const StepCoef *k, float *x, const float *eps, size_t per, Rng *rng) {
    for (size_t j = 0; j < per; j++) {
        double e = eps[j], x0 = ((double)x[j] - k->sqrt_1m_ab * e) * k->inv_sqrt_ab;
        if (k->clip > 0 && (x0 > k->clip || x0 < -k->clip)) {
            x0 = x0 > k->clip ? k->clip : -k->clip;
            e = ((double)x[j] - k->sqrt_ab * x0) / k->sqrt_1m_ab;
        }
        double v = k->sqrt_abp * x0 + k->dir * e;
        if (k->sigma > 0) v += k->sigma * rng_normal(rng);
        x[j] = (float)v;
    }
}

void ddim_sample(const Diffusion *d, const DdimConfig *c, const DdimModel *m, int B, size_t per, float *x,
                 Rng *rng) {
    ddim_check(c, "ddim");
    int S = c->steps;
    int *ts = ep_malloc((size_t)S * sizeof(int), "DDIM timesteps");
    int *tb = ep_malloc((size_t)B * sizeof(int), "DDIM batch timesteps");
    float *eps = ep_malloc((size_t)B * per * sizeof(float), "DDIM eps_hat");
    float *scratch = ep_malloc((size_t)B * per * sizeof(float), "DDIM unconditional eps_hat");
    ddim_timesteps(S, ts);
    for (int k = 0; k < S; k++) {
        for (int i = 0; i < B; i++) tb[i] = ts[k];
        ddim_guided_eps(m, c->guidance, x, tb, B, per, eps, scratch);
        double abp = k + 1 < S ? d->abar[ts[k + 1]] : 1.0;
        StepCoef coef = step_coef(d->abar[ts[k]], abp, c->eta, c->clip);
        for (int i = 0; i < B; i++) update_row(&coef, x + (size_t)i * per, eps + (size_t)i * per, per, rng + i);
        if (m->hook) m->hook(m->hook_ctx, k, S);
    }
    free(ts), free(tb), free(eps), free(scratch);
}

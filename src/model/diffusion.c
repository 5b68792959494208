#include "model/diffusion.h"
#include <math.h>

void diffusion_init(Diffusion *d) {
    double ab = 1.0;
    for (int t = 0; t < DIFFUSION_T; t++) {
        d->beta[t] = 1e-4 + (0.02 - 1e-4) * t / (DIFFUSION_T - 1);
        ab *= 1.0 - d->beta[t];
        d->abar[t] = ab;
    }
}

void diffusion_noise(const Diffusion *d, float *xt, const float *x0, const float *eps, const int *t, int B, size_t per) {
    for (int i = 0; i < B; i++) {
        float a = (float)sqrt(d->abar[t[i]]), s = (float)sqrt(1.0 - d->abar[t[i]]);
        for (size_t j = 0; j < per; j++) xt[i * per + j] = a * x0[i * per + j] + s * eps[i * per + j];
    }
}

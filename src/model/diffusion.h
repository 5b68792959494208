/* The DDPM forward process of docs/model.md: T = 1000, linear betas 1e-4..0.02 in double. */
#pragma once
#include <stddef.h>

#define DIFFUSION_T 1000

typedef struct {
    double beta[DIFFUSION_T], abar[DIFFUSION_T];
} Diffusion;

void diffusion_init(Diffusion *d);
/* x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for B samples of `per` values each. */
void diffusion_noise(const Diffusion *d, float *xt, const float *x0, const float *eps, const int *t, int B, size_t per);

/* Optimizers over the flat parameter buffer: AdamW (PyTorch's formulation:
 * decoupled decay, bias-corrected moments) and SGD with momentum; global-norm
 * clipping; EMA of the weights. */
#pragma once
#include <stddef.h>

typedef enum { OPT_ADAMW, OPT_SGD } OptKind;

typedef struct {
    OptKind kind;
    double beta1, beta2, eps, weight_decay, momentum;
    long long t;   /* steps taken (AdamW bias correction) */
    size_t n;
    float *m, *v;  /* AdamW moments; SGD uses m as its momentum buffer, v is NULL */
} Optimizer;

void optim_create(Optimizer *o, OptKind kind, size_t n);
void optim_destroy(Optimizer *o);
/* One update of params[0..n) with lr, gradients scaled by grad_scale first (clipping). */
void optim_step(Optimizer *o, float *params, const float *grads, double lr, float grad_scale);

double grad_norm(const float *g, size_t n);
/* The factor that brings the norm down to max_norm (1 when max_norm <= 0 or already below). */
float clip_scale(double norm, double max_norm);
void ema_update(float *ema, const float *params, size_t n, double decay);
/* Warm-up then constant or cosine decay to min_lr at `total`. */
double lr_at(long long step, double lr, int warmup, int cosine, double min_lr, long long total);

#include "optim.h"
#include "die.h"
#include <math.h>
#include <stdlib.h>

void optim_create(Optimizer *o, OptKind kind, size_t n) {
    o->kind = kind;
    o->t = 0;
    o->n = n;
    o->m = ep_calloc(n, sizeof(float), "optimizer moments");
    o->v = kind == OPT_ADAMW ? ep_calloc(n, sizeof(float), "optimizer moments") : NULL;
}

void optim_destroy(Optimizer *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void optim_step(Optimizer *o, float *p, const float *g, double lr, float grad_scale) {
    o->t++;
    if (o->kind == OPT_ADAMW) {
        float b1 = (float)o->beta1, b2 = (float)o->beta2;
        double bc1 = 1.0 - pow(o->beta1, (double)o->t), bc2 = 1.0 - pow(o->beta2, (double)o->t);
        float step = (float)(lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2)), eps = (float)o->eps;
        float decay = (float)(1.0 - lr * o->weight_decay);
        for (size_t i = 0; i < o->n; i++) {
            float gi = g[i] * grad_scale;
            o->m[i] = b1 * o->m[i] + (1.0f - b1) * gi;
            o->v[i] = b2 * o->v[i] + (1.0f - b2) * gi * gi;
            p[i] = p[i] * decay - step * o->m[i] / (sqrtf(o->v[i]) * rbc2 + eps);
        }
    } else {
        float mu = (float)o->momentum, wd = (float)o->weight_decay, lrf = (float)lr;
        for (size_t i = 0; i < o->n; i++) {
            float gi = g[i] * grad_scale + wd * p[i];
            o->m[i] = mu * o->m[i] + gi;
            p[i] -= lrf * o->m[i];
        }
    }
}

double grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

float clip_scale(double norm, double max_norm) {
    if (max_norm <= 0 || norm <= max_norm) return 1.0f;
    return (float)(max_norm / (norm + 1e-6));
}

void ema_update(float *ema, const float *p, size_t n, double decay) {
    float d = (float)decay, e = 1.0f - d;
    for (size_t i = 0; i < n; i++) ema[i] = d * ema[i] + e * p[i];
}

double lr_at(long long step, double lr, int warmup, int cosine, double min_lr, long long total) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / warmup;
    if (!cosine || total <= warmup) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(3.141592653589793 * progress));
}

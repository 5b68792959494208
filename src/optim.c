#include "optim.h"
#include "die.h"
#include "mem.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

void optim_create(Optimizer *o, OptKind kind, const ParamTable *pt) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->pt = pt;
    o->off = ep_malloc(pt->n * sizeof(size_t), "optimizer layout");
    o->t = ep_calloc(pt->n, sizeof(long long), "optimizer step counts");
    for (int i = 0; i < pt->n; i++) o->off[i] = NONE;
}

void optim_destroy(Optimizer *o) {
    mem_free(o->m);
    mem_free(o->v);
    free(o->off);
    free(o->t);
    memset(o, 0, sizeof *o);
}

void optim_copy(Optimizer *dst, const Optimizer *src) {
    const ParamTable *pt = src->pt;
    mem_free(dst->m);
    mem_free(dst->v);
    size_t *off = dst->off;
    long long *t = dst->t;
    *dst = *src;
    dst->off = off, dst->t = t;
    memcpy(dst->off, src->off, pt->n * sizeof(size_t));
    memcpy(dst->t, src->t, pt->n * sizeof(long long));
    dst->m = mem_alloc(src->size * sizeof(float), "optimizer moments");
    if (src->size) memcpy(dst->m, src->m, src->size * sizeof(float));
    dst->v = NULL;
    if (src->v) {
        dst->v = mem_alloc(src->size * sizeof(float), "optimizer moments");
        if (src->size) memcpy(dst->v, src->v, src->size * sizeof(float));
    }
}

void optim_fit(Optimizer *o, const uint8_t *keep) {
    const ParamTable *pt = o->pt;
    size_t *off = ep_malloc(pt->n * sizeof(size_t), "optimizer layout"), size = 0;
    for (int i = 0; i < pt->n; i++) {
        off[i] = keep[i] ? size : NONE;
        if (keep[i]) size += pt->info[i].numel;
    }
    float *m = mem_alloc(size * sizeof(float), "optimizer moments");
    float *v = o->kind == OPT_ADAMW ? mem_alloc(size * sizeof(float), "optimizer moments") : NULL;
    for (int i = 0; i < pt->n; i++) {
        if (off[i] != NONE && o->off[i] != NONE) {
            size_t n = pt->info[i].numel * sizeof(float);
            memcpy(m + off[i], o->m + o->off[i], n);
            if (v) memcpy(v + off[i], o->v + o->off[i], n);
        }
        if (off[i] == NONE || o->off[i] == NONE) o->t[i] = 0; /* released or new: counts restart */
    }
    mem_free(o->m);
    mem_free(o->v);
    free(o->off);
    o->m = m, o->v = v, o->off = off, o->size = size;
}

static void adamw_tensor(const Optimizer *o, float *p, const float *g, float *m, float *v, size_t n, long long t,
                         double lr, float grad_scale) {
    float b1 = (float)o->beta1, b2 = (float)o->beta2;
    double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    float step = (float)(lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2)), eps = (float)o->eps;
    float decay = (float)(1.0 - lr * o->weight_decay);
#pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

static void sgd_tensor(const Optimizer *o, float *p, const float *g, float *m, size_t n, double lr, float grad_scale) {
    float mu = (float)o->momentum, wd = (float)o->weight_decay, lrf = (float)lr;
#pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale + wd * p[i];
        m[i] = mu * m[i] + gi;
        p[i] -= lrf * m[i];
    }
}

void optim_step(Optimizer *o, float *params, const float *grads, const size_t *grad_off, double lr, float grad_scale) {
    const ParamTable *pt = o->pt;
    for (int i = 0; i < pt->n; i++) {
        if (grad_off[i] == NONE) continue;
        if (o->off[i] == NONE) ep_die("internal: %s trains without optimizer moments", pt->info[i].name);
        const ParamInfo *p = &pt->info[i];
        o->t[i]++;
        if (o->kind == OPT_ADAMW)
            adamw_tensor(o, params + p->offset, grads + grad_off[i], o->m + o->off[i], o->v + o->off[i], p->numel,
                         o->t[i], lr, grad_scale);
        else
            sgd_tensor(o, params + p->offset, grads + grad_off[i], o->m + o->off[i], p->numel, lr, grad_scale);
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

#include "train/optim.h"
#include "core/die.h"
#include "core/mem.h"
#include "ops/ops.h"
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
    o->how = ep_calloc(pt->n, 1, "optimizer masks");
    for (int i = 0; i < pt->n; i++) o->off[i] = NONE;
    o->lo = 0, o->hi = pt->total;
}

void optim_shard(Optimizer *o, size_t lo, size_t hi) { o->lo = lo, o->hi = hi; }

/* [a, b): this shard's part of tensor p, relative to the tensor's start. */
static void part(const Optimizer *o, const ParamInfo *p, size_t *a, size_t *b) {
    size_t s = p->offset, e = p->offset + p->numel;
    size_t x = s > o->lo ? s : o->lo, y = e < o->hi ? e : o->hi;
    *a = x < y ? x - s : 0;
    *b = x < y ? y - s : 0;
}

void optim_destroy(Optimizer *o) {
    ops_free(o->m);
    ops_free(o->v);
    free(o->off);
    free(o->t);
    free(o->how);
    memset(o, 0, sizeof *o);
}

void optim_copy(Optimizer *dst, const Optimizer *src) {
    const ParamTable *pt = src->pt;
    ops_free(dst->m);
    ops_free(dst->v);
    size_t *off = dst->off;
    long long *t = dst->t;
    uint8_t *how = dst->how;
    *dst = *src;
    dst->off = off, dst->t = t, dst->how = how;
    memcpy(dst->how, src->how, pt->n);
    memcpy(dst->off, src->off, pt->n * sizeof(size_t));
    memcpy(dst->t, src->t, pt->n * sizeof(long long));
    dst->m = ops_alloc(src->size * sizeof(float), "optimizer moments");
    ops_copy(dst->m, src->m, src->size * sizeof(float));
    dst->v = NULL;
    if (src->v) {
        dst->v = ops_alloc(src->size * sizeof(float), "optimizer moments");
        ops_copy(dst->v, src->v, src->size * sizeof(float));
    }
}

/* One moment buffer refitted to the layout off: the moments of tensors kept
 * from the old layout are carried across in `stage` (scratch whose contents
 * are dead, or a temporary of their size), the old buffer is freed before the
 * new one is allocated. So the old and new buffers are never held together:
 * what once made a stage boundary hold old + new moments (issue 15). */
static float *refit_buffer(Optimizer *o, float *old, const size_t *off, size_t size, float *scratch, size_t cap) {
    const ParamTable *pt = o->pt;
    size_t kept = 0;
    for (int i = 0; i < pt->n; i++) {
        size_t a, b;
        part(o, &pt->info[i], &a, &b);
        if (off[i] != NONE && o->off[i] != NONE) kept += b - a;
    }
    float *stage = scratch && kept <= cap ? scratch : kept ? ops_alloc(kept * sizeof(float), "moments across a refit") : NULL;
    size_t at = 0;
    for (int i = 0; i < pt->n; i++) {
        size_t a, b;
        part(o, &pt->info[i], &a, &b);
        if (off[i] == NONE || o->off[i] == NONE) continue;
        ops_copy(stage + at, old + o->off[i], (b - a) * sizeof(float));
        at += b - a;
    }
    ops_free(old);
    float *fresh = ops_alloc(size * sizeof(float), "optimizer moments"); /* zeroed: new tensors start at 0 */
    at = 0;
    for (int i = 0; i < pt->n; i++) {
        size_t a, b;
        part(o, &pt->info[i], &a, &b);
        if (off[i] == NONE || o->off[i] == NONE) continue;
        ops_copy(fresh + off[i], stage + at, (b - a) * sizeof(float));
        at += b - a;
    }
    if (stage != scratch) ops_free(stage);
    return fresh;
}

void optim_refit(Optimizer *o, const uint8_t *keep, float *scratch, size_t scratch_floats) {
    const ParamTable *pt = o->pt;
    size_t *off = ep_malloc(pt->n * sizeof(size_t), "optimizer layout"), size = 0;
    for (int i = 0; i < pt->n; i++) {
        size_t a, b;
        part(o, &pt->info[i], &a, &b);
        off[i] = keep[i] ? size : NONE;
        if (keep[i]) size += b - a;
        o->how[i] = keep[i];
    }
    /* one buffer after the other: m is refitted while v is still the old one */
    o->m = refit_buffer(o, o->m, off, size, scratch, scratch_floats);
    if (o->kind == OPT_ADAMW) o->v = refit_buffer(o, o->v, off, size, scratch, scratch_floats);
    for (int i = 0; i < pt->n; i++)
        if (off[i] == NONE || o->off[i] == NONE) o->t[i] = 0; /* released or new: counts restart */
    free(o->off);
    o->off = off, o->size = size;
}

void optim_fit(Optimizer *o, const uint8_t *keep) { optim_refit(o, keep, NULL, 0); }

size_t optim_gather(const Optimizer *o, MPI_Comm comm, float **m_full, float **v_full) {
    int R = 1;
    if (comm != MPI_COMM_NULL) MPI_Comm_size(comm, &R);
    long long mine = (long long)o->size, total = mine;
    long long *sizes = ep_malloc(R * sizeof(long long), "shard sizes");
    if (R > 1) MPI_Allgather(&mine, 1, MPI_LONG_LONG, sizes, 1, MPI_LONG_LONG, comm);
    else sizes[0] = mine;
    total = 0;
    for (int r = 0; r < R; r++) total += sizes[r];
    *m_full = mem_alloc((size_t)total * sizeof(float), "gathered moments");
    *v_full = o->v ? mem_alloc((size_t)total * sizeof(float), "gathered moments") : NULL;
    int *cnt = ep_malloc(2 * R * sizeof(int), "shard sizes"), *dsp = cnt + R;
    for (int r = 0, at = 0; r < R; r++) cnt[r] = (int)sizes[r], dsp[r] = at, at += cnt[r];
    /* MPI works on host memory: this shard's moments come down first when they live on a device */
    size_t bytes = (size_t)mine * sizeof(float);
    float *hm = o->m, *hv = o->v;
    if (!ops_host_memory()) {
        hm = mem_alloc(bytes, "moments on the host");
        ops_download(hm, o->m, bytes);
        if (o->v) {
            hv = mem_alloc(bytes, "moments on the host");
            ops_download(hv, o->v, bytes);
        }
    }
    if (R > 1) {
        MPI_Allgatherv(hm, (int)mine, MPI_FLOAT, *m_full, cnt, dsp, MPI_FLOAT, comm);
        if (o->v) MPI_Allgatherv(hv, (int)mine, MPI_FLOAT, *v_full, cnt, dsp, MPI_FLOAT, comm);
    } else if (mine) {
        memcpy(*m_full, hm, bytes);
        if (o->v) memcpy(*v_full, hv, bytes);
    }
    if (hm != o->m) mem_free(hm);
    if (hv != o->v) mem_free(hv);
    free(cnt);
    free(sizes);
    return (size_t)total;
}

void optim_scatter(Optimizer *o, const uint8_t *keep, size_t lo, size_t hi, const float *m_full, const float *v_full) {
    const ParamTable *pt = o->pt;
    ops_free(o->m);
    ops_free(o->v);
    o->m = o->v = NULL;
    o->size = 0;
    for (int i = 0; i < pt->n; i++) o->off[i] = NONE;
    o->lo = lo, o->hi = hi;
    long long *t = ep_malloc(pt->n * sizeof(long long), "optimizer counts");
    memcpy(t, o->t, pt->n * sizeof(long long)); /* counts are replicated: keep them through the refit */
    optim_fit(o, keep);
    memcpy(o->t, t, pt->n * sizeof(long long));
    free(t);
    size_t full = 0;
    for (int i = 0; i < pt->n; i++) {
        if (!keep[i]) continue;
        size_t a, b;
        part(o, &pt->info[i], &a, &b);
        ops_upload(o->m + o->off[i], m_full + full + a, (b - a) * sizeof(float));
        if (o->v) ops_upload(o->v + o->off[i], v_full + full + a, (b - a) * sizeof(float));
        full += pt->info[i].numel;
    }
}

/* AdamW: every trainable tensor's update in one op_adamw_multi (one launch on a GPU). */
void optim_step(Optimizer *o, float *params, const float *grads, const size_t *grad_off, double lr, float grad_scale) {
    const ParamTable *pt = o->pt;
    AdamSeg *segs = o->kind == OPT_ADAMW ? ep_malloc((size_t)pt->n * sizeof(AdamSeg), "optimizer segments") : NULL;
    int nseg = 0;
    for (int i = 0; i < pt->n; i++) {
        if (grad_off[i] == NONE) continue;
        if (o->off[i] == NONE) ep_die("internal: %s trains without optimizer moments", pt->info[i].name);
        const ParamInfo *p = &pt->info[i];
        size_t a, b;
        part(o, p, &a, &b);
        o->t[i]++;
        /* only the rows that train update (no decay on the others either):
         * [a, b) narrowed to them, the moments' offset moved with it */
        size_t lo, hi;
        param_trained_range(p, o->how[i], &lo, &hi);
        size_t a2 = a > lo ? a : lo, b2 = b < hi ? b : hi;
        if (b2 <= a2) continue;
        size_t m_off = o->off[i] + (a2 - a);
        a = a2, b = b2;
        if (o->kind == OPT_ADAMW) {
            /* this tensor's bias corrections and step, folded into its scalars */
            double bc1 = 1.0 - pow(o->beta1, (double)o->t[i]), bc2 = 1.0 - pow(o->beta2, (double)o->t[i]);
            segs[nseg++] = (AdamSeg){p->offset + a, grad_off[i] + a, m_off, b - a, (float)(lr / bc1),
                                     (float)(1.0 / sqrt(bc2)), (float)(1.0 - lr * o->weight_decay)};
        } else {
            op_sgd(params + p->offset + a, grads + grad_off[i] + a, o->m + m_off, b - a, (float)o->momentum,
                   (float)o->weight_decay, (float)lr, grad_scale);
        }
    }
    if (segs) op_adamw_multi(params, grads, o->m, o->v, segs, nseg, (float)o->beta1, (float)o->beta2, (float)o->eps,
                             grad_scale);
    free(segs);
}

float clip_scale(double norm, double max_norm) {
    if (max_norm <= 0 || norm <= max_norm) return 1.0f;
    return (float)(max_norm / (norm + 1e-6));
}

void ema_update(float *ema, const float *p, size_t n, double decay) { op_ema(ema, p, n, (float)decay); }

double lr_at(long long step, double lr, int warmup, int cosine, double min_lr, long long total) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / warmup;
    if (!cosine || total <= warmup) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(3.141592653589793 * progress));
}

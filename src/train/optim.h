/* Optimizers over the trainable tensors: AdamW (PyTorch's formulation:
 * decoupled decay, bias-corrected moments) and SGD with momentum. Moments
 * exist only for tensors that have trained (a frozen block that never trained
 * has none); each tensor counts its own updates, so a block unfrozen at step
 * 5000 gets the bias correction of its first update. Also: global-norm
 * clipping, EMA of the weights, the learning-rate schedule. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <mpi.h>
#include "model/params.h"

typedef enum { OPT_ADAMW, OPT_SGD } OptKind;

typedef struct {
    OptKind kind;
    double beta1, beta2, eps, weight_decay, momentum;
    const ParamTable *pt;
    size_t lo, hi; /* the part of the flat parameter space whose moments live here (ZeRO-1 shard) */
    size_t *off;   /* [pt->n] offset of this shard's part of a tensor's moments in m (and v),
                      or (size_t)-1: the tensor has no moments anywhere */
    long long *t;  /* [pt->n] updates applied to each tensor */
    uint8_t *how;  /* [pt->n] the fit's mask value: 1, or TRAIN_TEMPORAL_ROWS (only those rows update) */
    float *m, *v;  /* AdamW moments; SGD keeps its momentum in m, v is NULL */
    size_t size;   /* floats in m (and v) */
} Optimizer;

void optim_create(Optimizer *o, OptKind kind, const ParamTable *pt);
/* Keeps moments for the flat range [lo, hi) only (call before the first fit). */
void optim_shard(Optimizer *o, size_t lo, size_t hi);
void optim_destroy(Optimizer *o);
/* dst := an independent copy of src (dst must be created with the same table). */
void optim_copy(Optimizer *dst, const Optimizer *src);
/* Gives moments to exactly the tensors in keep [pt->n]: existing moments and
 * update counts of kept tensors are preserved, new ones start at zero, the
 * others are released. */
void optim_fit(Optimizer *o, const uint8_t *keep);
/* The same, never holding the old and the new moments at once: scratch
 * (scratch_floats floats of backend memory whose contents are dead, e.g. the
 * gradient buffer between steps) carries the kept moments across; without
 * it (or too small) a temporary of their size does. Peak over the refit:
 * max(old, new) moments with scratch, old + new - (dropped) without. */
void optim_refit(Optimizer *o, const uint8_t *keep, float *scratch, size_t scratch_floats);
/* One update of this shard's part of every tensor that has a gradient
 * (grad_off[i] != (size_t)-1: the gradient of element j of tensor i is at
 * grads[grad_off[i] + j]), scaled by grad_scale first (clipping). Such a
 * tensor must have moments. Every shard counts the update of every tensor. */
void optim_step(Optimizer *o, float *params, const float *grads, const size_t *grad_off, double lr, float grad_scale);

/* The moments of every shard, concatenated in rank order over comm: the
 * unsharded layout (each kept tensor whole, in table order). *m_full, *v_full
 * are mem_alloc'd; returns their length. */
size_t optim_gather(const Optimizer *o, MPI_Comm comm, float **m_full, float **v_full);
/* Re-shards from an unsharded layout: this optimizer keeps exactly the tensors
 * in keep, owns [lo, hi), and takes its part from m_full/v_full. */
void optim_scatter(Optimizer *o, const uint8_t *keep, size_t lo, size_t hi, const float *m_full, const float *v_full);

/* The factor that brings the norm down to max_norm (1 when max_norm <= 0 or already below). */
float clip_scale(double norm, double max_norm);
void ema_update(float *ema, const float *params, size_t n, double decay); /* backend memory (op_ema) */
/* Warm-up then constant or cosine decay to min_lr at `total`. */
double lr_at(long long step, double lr, int warmup, int cosine, double min_lr, long long total);

/* One training step, the same for the training loop, the Ent-Prog search
 * windows and benchmarks/bench_step: forward, epsilon-MSE loss, backward,
 * the gradient exchange between data-parallel ranks (ZeRO-1: each rank
 * updates its shard of the optimizer state, then shares the parameters),
 * the gradient norm, clipping, the optimizer update and the EMA. Everything
 * stays in backend memory; the batch is the caller's. */
#pragma once
#include <stddef.h>
#include "model/model.h"
#include "mpi/dp.h"
#include "train/optim.h"

struct DpNccl;

/* The ranks a step's gradients are averaged over, and its buffers. */
typedef struct {
    Dp dp;                 /* the data-parallel ranks (size 1: no exchange) */
    struct DpNccl *nccl;   /* GPU ranks exchanging device buffers, else NULL */
    size_t *cut;           /* [dp.size + 1] each rank's slice of the packed gradients */
    float *scratch;        /* reduce-scatter receive buffer (dp.size > 1, over MPI) */
    int overlap;           /* over MPI: slices leave while backward runs (ENTPROG_COMM_OVERLAP, default 1;
                              the same bits either way) */
} StepComm;

/* What one step needs besides the model and the optimizer. */
typedef struct {
    const Batch *batch;
    const float *eps;      /* [n] the noise the model predicts */
    float *eps_hat, *deps; /* [n] the prediction and the loss gradient (scratch) */
    size_t n;
    double lr, grad_clip;  /* grad_clip <= 0: no clipping */
    float *ema;            /* EMA weights (NULL: none) */
    double ema_decay;
} StepInput;

typedef struct {
    double loss;   /* the batch loss, averaged over the ranks */
    double gnorm;  /* the global gradient norm before clipping */
    double comm_s; /* seconds spent exchanging gradients and parameters, outside backward (overlap hides the rest) */
    int skipped;   /* the loss or the gradient norm was not finite (on some rank): no update */
} StepResult;

/* A non-finite loss or gradient norm on any rank is seen by all (both are
 * sums over the ranks): then the step changes nothing (no update, no EMA)
 * and says so in StepResult.skipped. */
/* Allocates the exchange buffers for a model over dp (nccl may be NULL). */
void step_comm_init(StepComm *c, const Dp *dp, struct DpNccl *nccl, size_t total_params);
void step_comm_free(StepComm *c);
void train_step(Model *m, Optimizer *opt, StepComm *c, const StepInput *in, StepResult *out);

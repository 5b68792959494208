/* Conditional Entropy Inflation (docs/model.md "Blocks as the units of Ent-Prog"):
 * how much the spread of the model's prediction grows when one block is
 * skipped, measured on a fixed probe set. Ent-Prog unfreezes blocks in the
 * order of their scores. docs/cei.md describes the choices made here.
 *
 * Probe tuples. Tuple i (i = 0..N-1) comes from one generator stream,
 * rng_seed_stream(seed, CEI_STREAM), consumed strictly sample by sample:
 *   dataset_pick(F)  ->  video, clip start, reference frame
 *   t   = rng_below(DIFFUSION_T)
 *   eps = F*C*H*W draws of rng_normal, in [F,C,H,W] order
 * then x0, pose and ref are read from the dataset and x_t = diffusion_noise
 * (x0, eps, t); no condition is dropped. Because nothing is drawn per batch,
 * tuple i does not depend on the batch size B. */
#pragma once
#include <stdint.h>
#include "data/dataset.h"
#include "model/diffusion.h"
#include "model/model.h"

/* The rng_seed_stream tag of the probe set (training uses 1..3). */
#define CEI_STREAM 11

/* Host buffers for B probe tuples, laid out as the model's Batch wants them. */
typedef struct {
    int B;
    float *x0, *eps, *x, *ref, *pose; /* [B,F,C,H,W] x3, [B,C,H,W], [B,F,Cp,sH,sW] */
    int *t;                           /* [B] */
    uint8_t *no_drop;                 /* [B] zeros: CEI never drops a condition */
} CeiBatch;

void cei_batch_alloc(CeiBatch *b, const ModelShape *s, int B);
void cei_batch_free(CeiBatch *b);
Batch cei_batch_view(const CeiBatch *b);

/* Draws the next probe tuple from r into row `row` of b (the order above). */
void cei_probe_draw(Rng *r, Dataset *ds, const Diffusion *d, const ModelShape *s, CeiBatch *b, int row);

/* pi[b] for b = 0..L-1 on N probe tuples drawn from ds with `seed`:
 * pi(b) = mean_i log(sigma(eps_hat_i with block b skipped) / sigma(eps_hat_i)),
 * sigma the population standard deviation over all F*C*H*W values of one
 * sample. Runs in batches of m->B (the model's allocated batch; the last
 * batch may be partial) with the model's allocated F. The caller's m->skip
 * is restored on return. Dies if a prediction has zero or non-finite spread
 * (e.g. weights straight from initialisation, whose output is exactly 0). */
void cei_compute(Model *m, Dataset *ds, int N, uint64_t seed, double *pi);

/* order[k] = the block with the k-th highest pi; ties go to the lower block index. */
void cei_rank(const double *pi, int L, int *order);

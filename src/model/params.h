/* The named parameter tensors of EP-VDiT (docs/model.md "Parameter names"), carved
 * from one flat float allocation. Each block's tensors are contiguous, so a
 * block is one [begin, end) range of the flat buffer (what Ent-Prog freezes). */
#pragma once
#include <stddef.h>
#include "model/shape.h"

#define PARAM_NAME_MAX 64

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    int shape[4];
    size_t offset; /* in floats, into the flat buffer */
    size_t numel;
    int block;     /* block index, or -1 for the always-trainable parameters */
} ParamInfo;

/* Indices of the tensors of one block, in table order. */
enum {
    BP_ADA_W, BP_ADA_B, BP_QKV_W, BP_QKV_B, BP_PROJ_W, BP_PROJ_B,
    BP_TQKV_W, BP_TQKV_B, BP_TPROJ_W, BP_TPROJ_B, BP_FC1_W, BP_FC1_B, BP_FC2_W, BP_FC2_B,
    BP_COUNT
};

typedef struct {
    ParamInfo *info;
    int n;
    size_t total;       /* floats */
    int G;              /* pose guider down stages */
    /* table indices of the non-block tensors */
    int t_w1, t_b1, t_w2, t_b2, x_w, x_b;
    int pg_in_w, pg_in_b, pg_down_w0, pg_patch_w, pg_patch_b, pg_zero_w, pg_zero_b; /* down i: pg_down_w0 + 2i (+1 bias) */
    int blk0;           /* index of blocks.0.ada.weight; block b tensor k is blk0 + b*BP_COUNT + k */
    int f_ada_w, f_ada_b, f_lin_w, f_lin_b;
    size_t block_begin0, block_stride; /* flat offsets: block b is [begin0 + b*stride, +stride) */
} ParamTable;

void param_table_build(ParamTable *t, const ModelShape *m);
void param_table_free(ParamTable *t);

/* A trainable mask holds, per tensor, 0 (frozen), 1 (trains) or
 * TRAIN_TEMPORAL_ROWS, for a block's ada only: just its temporal-attention
 * modulation trains (shift_t, scale_t, gate_t: chunks 3-5 of the 9, a
 * contiguous range of rows of the weight and of the bias). The `temporal`
 * method needs it: gate_t starts at 0 and image training never moves it, so
 * the temporal attention alone would get a zero gradient. */
#define TRAIN_TEMPORAL_ROWS 2
/* [lo, hi): the elements of tensor p that train under mask value `how`. */
static inline void param_trained_range(const ParamInfo *p, int how, size_t *lo, size_t *hi) {
    size_t chunk = p->numel / 9;
    *lo = how == TRAIN_TEMPORAL_ROWS ? 3 * chunk : 0;
    *hi = how == TRAIN_TEMPORAL_ROWS ? 6 * chunk : p->numel;
}
int param_find(const ParamTable *t, const char *name); /* -1 if absent */
static inline const ParamInfo *param_block(const ParamTable *t, int b, int k) {
    return &t->info[t->blk0 + b * BP_COUNT + k];
}

/* docs/model.md initialisation (Xavier / N(0,0.02) / zeros) from a seeded generator. */
struct Rng;
void param_init(const ParamTable *t, const ModelShape *m, float *w, struct Rng *rng);

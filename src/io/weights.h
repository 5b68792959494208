/* Model weights in either format, chosen in this one place by the file
 * itself: HDF5 checkpoints and bare weights files (io/checkpoint.h), or
 * safetensors with the parameter names of docs/model.md (docs/weights.md). */
#pragma once
#include "io/checkpoint.h"
#include "io/safetensors.h"

/* The model shape of a checkpoint, bare weights or safetensors file (from its
 * __metadata__; F may be absent: then 0). Dies naming the file. */
void weights_read_shape(const char *path, ModelShape *shape);

/* ckpt_load for any weights file. A safetensors file must hold exactly the
 * parameters of s->shape, each with its shape, as F32, F16 or BF16 and finite;
 * everything is checked before s->params is touched. It fills only s->params
 * (no moments, EMA or schedule) and returns CKPT_BARE. */
int weights_load(const char *path, CkptState *s, MPI_Comm comm);

/* Writes w (pt->total floats) as safetensors, tensors in table order, the shape
 * as __metadata__ (the HDF5 root attribute names, decimal strings). */
void weights_save_safetensors(const char *path, const ParamTable *pt, const ModelShape *shape, const float *w,
                              StOutType type);

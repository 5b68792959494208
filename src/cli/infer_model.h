/* The model for inference (predict, grad, sample, cei): the backend chosen,
 * a model of the given shape and batch, its weights read from a checkpoint
 * or a bare weights file (docs/formats.md). */
#pragma once
#include "model/model.h"

typedef struct {
    const char *cmd, *opt; /* for messages: "sample", "--ckpt" */
    const char *path;      /* checkpoint or bare weights file */
    const char *backend;   /* "cpu" or "cuda" */
    int ema;               /* the checkpoint's EMA weights instead of its model weights */
    int with_grad;         /* gradients too (grad); else forward only */
    int B, F;              /* batch and clip length of the activations */
} InferSpec;

/* Dies naming the command and option unless `path` can be read. */
void infer_check_readable(const char *cmd, const char *opt, const char *path);
/* Selects s->backend, then creates m for `shape` (which the file must match)
 * and loads its weights. */
void infer_model_load(Model *m, const ModelShape *shape, const InferSpec *s);

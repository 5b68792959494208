/* Checkpoints (docs/formats.md "Checkpoint"): parallel HDF5 through the MPI-IO
 * driver with collective transfers, written to "<path>.tmp" then renamed,
 * with a checksum of every tensor that the loader verifies. */
#pragma once
#include <mpi.h>
#include <stdint.h>
#include "model/params.h"
#include "core/rng.h"
#include "model/shape.h"

#define CKPT_FORMAT_VERSION 2 /* 2: additive, shard-friendly checksum */
#define CKPT_MAX_RNG 4

#define CKPT_MAX_ARRAYS 24

/* A float64 table stored as /schedule/<name>: [rows, cols], or [rows] when
 * cols == 0 (int32 when as_int32). On load, up to cap_rows rows are read and
 * rows is set (0 when the file has none). */
typedef struct {
    const char *name;
    double *data;
    int rows, cols, cap_rows, as_int32;
} CkptArray;

typedef struct {
    const ParamTable *pt;
    ModelShape shape;
    float *params;            /* pt->total floats */
    float *m, *v;             /* AdamW moments (NULL: none); SGD momentum in m alone */
    const size_t *opt_off;    /* [pt->n] where each tensor's moments are in m/v, (size_t)-1 for
                                 none; NULL: dense, at the parameter offsets */
    long long *opt_t;         /* [pt->n] per-tensor update counts, /optimizer/t (NULL: not kept) */
    float *ema;               /* EMA weights (NULL: none) */
    long long step, samples_seen;
    int bad_steps;            /* consecutive skipped (non-finite) steps up to `step`, /state attribute */
    Rng rng[CKPT_MAX_RNG];    /* generator states for a bit-exact resume */
    int n_rng;
    const char *deck_text;    /* the full deck, stored as /config */
    char numerics[256];       /* the settings outside the deck that change results ("ENTPROG_GEMM=..;.."),
                                 /state attribute `numerics`; on load "" when the file has none */
    CkptArray arrays[CKPT_MAX_ARRAYS]; /* /schedule/<name> tables (Ent-Prog state) */
    int n_arrays;
} CkptState;

/* Collective over comm: every rank calls with the same state. */
void ckpt_save(const char *path, const CkptState *s, MPI_Comm comm);

/* Reads the root hyper-parameter attributes of a checkpoint or bare weights
 * file (F may be absent in a bare weights file: then 0). Dies naming the file. */
void ckpt_read_shape(const char *path, ModelShape *shape);

/* Loads a checkpoint into s (s->pt, s->params and, where non-NULL, s->m, s->v,
 * s->ema must be allocated by the caller for s->shape). Verifies the checksum
 * and that the file's shape matches s->shape (F excepted). Returns flags:
 * CKPT_HAS_OPT, CKPT_HAS_EMA, CKPT_HAS_STATE, CKPT_BARE (weights only). Moments
 * or EMA absent in the file leave those buffers untouched. */
enum { CKPT_HAS_OPT = 1, CKPT_HAS_EMA = 2, CKPT_HAS_STATE = 4, CKPT_BARE = 8 };
int ckpt_load(const char *path, CkptState *s, MPI_Comm comm);

/* Which tensors have optimizer moments in the file (mask [pt->n]); returns their count. */
int ckpt_moment_mask(const char *path, const ParamTable *pt, uint8_t *mask);

/* The deck stored in a checkpoint's /config (malloc'd), or NULL if absent. */
char *ckpt_read_config(const char *path);

/* Model hyper-parameters (docs/model.md "Shapes and names") and the sizes derived from them. */
#pragma once

typedef struct {
    int F, C, H, W, p, D, NH, L, mlp_ratio, Cp, s, Cg;
    /* where the fixed frame embedding is added (docs/model.md item 3): "input"
     * (every video token, the contract's default) or "temporal" (only the input
     * of each block's temporal attention, so a DiT imported with gate_t = 0 is
     * DiT frame by frame); "" reads as "input" */
    char frame_embed[12];
} ModelShape;

/* The integer shape keys by the names checkpoints, safetensors metadata and
 * decks use, F first (it only sizes activations, so loaders compare the
 * others): shape_key(m, i) is m's field named SHAPE_KEY_NAMES[i]. */
#define SHAPE_N_KEYS 12
extern const char *const SHAPE_KEY_NAMES[SHAPE_N_KEYS];
int *shape_key(ModelShape *m, int i);

/* model.frame_embed's values, as the deck's choice list. */
#define SHAPE_FRAME_EMBED_CHOICES "input|temporal"

/* 1 when the frame embedding goes into the temporal attention only. */
int shape_frame_embed_temporal(const ModelShape *m);
/* "input" or "temporal" ("" reads as "input"). */
const char *shape_frame_embed_name(const ModelShape *m);
/* Sets m->frame_embed from a file's value; returns 0 when it is neither name. */
int shape_set_frame_embed(ModelShape *m, const char *v);
/* The warning for weights recorded with another frame_embed than the model
 * uses (only for video models: in image mode it is never added). */
void shape_warn_frame_embed(const char *path, const ModelShape *have, const ModelShape *want);

/* Derived sizes. */
static inline int shape_S(const ModelShape *m) { return (m->H / m->p) * (m->W / m->p); }
static inline int shape_dh(const ModelShape *m) { return m->D / m->NH; }
static inline int shape_Dm(const ModelShape *m) { return m->mlp_ratio * m->D; }
int shape_G(const ModelShape *m); /* log2(s) */

/* Returns NULL when the shape is possible, else a message naming the offending key.
 * F is allowed to be 0 in weights-only contexts (check_F = 0). */
const char *shape_check(const ModelShape *m, int check_F);

/* Short architecture string, e.g. "EP-VDiT D32 L3 NH2 p2". */
void shape_describe(const ModelShape *m, char *buf, int n);

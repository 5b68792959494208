/* Model hyper-parameters (docs/model.md "Shapes and names") and the sizes derived from them. */
#pragma once

typedef struct {
    int F, C, H, W, p, D, NH, L, mlp_ratio, Cp, s, Cg;
} ModelShape;

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

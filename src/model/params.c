#include "model/params.h"
#include "core/die.h"
#include "core/rng.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int add(ParamTable *t, int cap, int block, const char *fmt, int ndim, const int *shape, ...) {
    if (t->n >= cap) ep_die("internal: parameter table overflow");
    ParamInfo *p = &t->info[t->n];
    va_list ap;
    va_start(ap, shape);
    vsnprintf(p->name, PARAM_NAME_MAX, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < 4; i++) p->shape[i] = i < ndim ? shape[i] : 1;
    for (int i = 0; i < ndim; i++) p->numel *= (size_t)shape[i];
    p->offset = t->total;
    p->block = block;
    t->total += p->numel;
    return t->n++;
}

#define S1(a) ((int[]){a})
#define S2(a, b) ((int[]){a, b})
#define S4(a, b, c, d) ((int[]){a, b, c, d})

void param_table_build(ParamTable *t, const ModelShape *m) {
    memset(t, 0, sizeof *t);
    int D = m->D, Dm = shape_Dm(m), G = shape_G(m), p = m->p, Cg = m->Cg;
    int cap = 16 + 2 * G + BP_COUNT * m->L;
    t->info = ep_calloc(cap, sizeof(ParamInfo), "parameter table");
    t->G = G;
    t->t_w1 = add(t, cap, -1, "t_embed.mlp.0.weight", 2, S2(D, 256));
    t->t_b1 = add(t, cap, -1, "t_embed.mlp.0.bias", 1, S1(D));
    t->t_w2 = add(t, cap, -1, "t_embed.mlp.2.weight", 2, S2(D, D));
    t->t_b2 = add(t, cap, -1, "t_embed.mlp.2.bias", 1, S1(D));
    t->x_w = add(t, cap, -1, "x_embed.proj.weight", 4, S4(D, m->C, p, p));
    t->x_b = add(t, cap, -1, "x_embed.proj.bias", 1, S1(D));
    t->pg_in_w = add(t, cap, -1, "pose_guider.conv_in.weight", 4, S4(Cg, m->Cp, 3, 3));
    t->pg_in_b = add(t, cap, -1, "pose_guider.conv_in.bias", 1, S1(Cg));
    t->pg_down_w0 = t->n;
    for (int i = 0; i < G; i++) {
        add(t, cap, -1, "pose_guider.down.%d.weight", 4, S4(Cg, Cg, 3, 3), i);
        add(t, cap, -1, "pose_guider.down.%d.bias", 1, S1(Cg), i);
    }
    t->pg_patch_w = add(t, cap, -1, "pose_guider.patch.weight", 4, S4(D, Cg, p, p));
    t->pg_patch_b = add(t, cap, -1, "pose_guider.patch.bias", 1, S1(D));
    t->pg_zero_w = add(t, cap, -1, "pose_guider.zero.weight", 2, S2(D, D));
    t->pg_zero_b = add(t, cap, -1, "pose_guider.zero.bias", 1, S1(D));
    t->blk0 = t->n;
    t->block_begin0 = t->total;
    for (int b = 0; b < m->L; b++) {
        add(t, cap, b, "blocks.%d.ada.weight", 2, S2(9 * D, D), b);
        add(t, cap, b, "blocks.%d.ada.bias", 1, S1(9 * D), b);
        add(t, cap, b, "blocks.%d.attn_s.qkv.weight", 2, S2(3 * D, D), b);
        add(t, cap, b, "blocks.%d.attn_s.qkv.bias", 1, S1(3 * D), b);
        add(t, cap, b, "blocks.%d.attn_s.proj.weight", 2, S2(D, D), b);
        add(t, cap, b, "blocks.%d.attn_s.proj.bias", 1, S1(D), b);
        add(t, cap, b, "blocks.%d.attn_t.qkv.weight", 2, S2(3 * D, D), b);
        add(t, cap, b, "blocks.%d.attn_t.qkv.bias", 1, S1(3 * D), b);
        add(t, cap, b, "blocks.%d.attn_t.proj.weight", 2, S2(D, D), b);
        add(t, cap, b, "blocks.%d.attn_t.proj.bias", 1, S1(D), b);
        add(t, cap, b, "blocks.%d.mlp.fc1.weight", 2, S2(Dm, D), b);
        add(t, cap, b, "blocks.%d.mlp.fc1.bias", 1, S1(Dm), b);
        add(t, cap, b, "blocks.%d.mlp.fc2.weight", 2, S2(D, Dm), b);
        add(t, cap, b, "blocks.%d.mlp.fc2.bias", 1, S1(D), b);
        if (b == 0) t->block_stride = t->total - t->block_begin0;
    }
    t->f_ada_w = add(t, cap, -1, "final.ada.weight", 2, S2(2 * D, D));
    t->f_ada_b = add(t, cap, -1, "final.ada.bias", 1, S1(2 * D));
    t->f_lin_w = add(t, cap, -1, "final.linear.weight", 2, S2(p * p * m->C, D));
    t->f_lin_b = add(t, cap, -1, "final.linear.bias", 1, S1(p * p * m->C));
}

void param_table_free(ParamTable *t) {
    free(t->info);
    memset(t, 0, sizeof *t);
}

int param_find(const ParamTable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->info[i].name, name) == 0) return i;
    return -1;
}

/* Xavier-uniform over a weight viewed as [out, in*k*k]. */
static void xavier(float *w, const ParamInfo *p, Rng *rng) {
    size_t fan_out = (size_t)p->shape[0], fan_in = p->numel / fan_out;
    float a = (float)sqrt(6.0 / (double)(fan_in + fan_out));
    for (size_t i = 0; i < p->numel; i++) w[i] = a * (2.0f * rng_uniform(rng) - 1.0f);
}

static void normal(float *w, const ParamInfo *p, float std, Rng *rng) {
    for (size_t i = 0; i < p->numel; i++) w[i] = std * rng_normal(rng);
}

void param_init(const ParamTable *t, const ModelShape *m, float *w, Rng *rng) {
    (void)m;
    memset(w, 0, t->total * sizeof(float)); /* biases and every zero-initialised tensor */
    for (int i = 0; i < t->n; i++) {
        const ParamInfo *p = &t->info[i];
        float *x = w + p->offset;
        if (p->ndim == 1) continue;
        if (i == t->t_w1 || i == t->t_w2) { normal(x, p, 0.02f, rng); continue; }
        if (i == t->pg_zero_w || i == t->f_ada_w || i == t->f_lin_w) continue;
        /* attn_t.proj gets Xavier, not docs/model.md's zero: with its gate_t also zero
         * (W_ada is zero) neither could ever receive a gradient and the temporal
         * branch would stay dead forever; gate_t = 0 alone keeps every block the
         * identity at initialisation (docs/model.md, "Choices"). */
        if (p->block >= 0 && i - t->blk0 - p->block * BP_COUNT == BP_ADA_W) continue;
        xavier(x, p, rng);
    }
}

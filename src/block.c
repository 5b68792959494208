/* One EP-VDiT block (MODEL.md item 6) in both passes, forward and backward.
 * The reference pass computes its bank and that bank's qkv (whose k, v the
 * video pass attends to); the video pass runs spatial, temporal and MLP
 * sub-layers, each LayerNorm -> modulate -> op -> gated residual. */
#include "block.h"
#include "ops.h"
#include <omp.h>
#include <string.h>

/* This thread's softmax-gradient scratch. */
#define DS(g) ((g)->dS + (size_t)omp_get_thread_num() * (g)->dS_stride)
#define ZERO(p, n) memset((p), 0, (size_t)(n) * sizeof(float))

typedef struct {
    int B, F, D, S, NH, dh, Dm, ld; /* ld = 9D: row stride of the modulation table */
    size_t N, Nr;
} Dims;

static Dims dims(const Model *m) {
    const ModelShape *s = &m->shape;
    Dims d = {m->B, s->F, s->D, shape_S(s), s->NH, shape_dh(s), shape_Dm(s), 9 * s->D, 0, 0};
    d.N = (size_t)d.B * d.F * d.S;
    d.Nr = (size_t)d.B * d.S;
    return d;
}

static const float *W(const Model *m, int b, int k) { return m->params + param_block(&m->pt, b, k)->offset; }
/* NULL for a frozen tensor: the ops then skip its weight-gradient product. */
static float *dW(const Model *m, int b, int k) { return model_grad(m, m->pt.blk0 + b * BP_COUNT + k); }

/* Offsets of the nine modulations inside a row of the table. */
enum { SHIFT_S, SCALE_S, GATE_S, SHIFT_T, SCALE_T, GATE_T, SHIFT_M, SCALE_M, GATE_M };
#define MOD(base, which, D) ((base) + (size_t)(which) * (D))

/* u = modulate(LN(x)) over G groups of T rows. */
static void ln_modulate(float *xhat, float *rstd, float *u, float *mean, const float *x, const float *mod,
                        int shift, int scale, const Dims *d, int G, int T) {
    op_layernorm(xhat, mean, rstd, x, G * T, d->D);
    op_modulate(u, xhat, MOD(mod, shift, d->D), MOD(mod, scale, d->D), d->ld, G, T, d->D);
}

/* dx += d/dx of u = modulate(LN(x)); dxhat is scratch. */
static void ln_modulate_backward(float *dx, float *dmod, float *dxhat, const float *du, const float *xhat,
                                 const float *rstd, const float *mod, int shift, int scale, const Dims *d, int G,
                                 int T) {
    size_t n = (size_t)G * T;
    ZERO(dxhat, n * d->D);
    op_modulate_backward(dxhat, MOD(dmod, shift, d->D), MOD(dmod, scale, d->D), du, xhat,
                         MOD(mod, scale, d->D), d->ld, G, T, d->D);
    op_layernorm_backward(dx, dxhat, xhat, rstd, (int)n, d->D);
}

/* MLP sub-layer on a stream of G groups of T rows (shared by both passes). */
typedef struct { float *xhat, *rstd, *u, *h, *g, *y; } MlpActs;

static void mlp_forward(const Model *m, int b, float *z, const float *mod, const MlpActs *a, const Dims *d, int G,
                        int T) {
    int n = G * T;
    ln_modulate(a->xhat, a->rstd, a->u, m->a.mean, z, mod, SHIFT_M, SCALE_M, d, G, T);
    op_linear(a->h, a->u, W(m, b, BP_FC1_W), W(m, b, BP_FC1_B), n, d->D, d->Dm);
    op_gelu_tanh(a->g, a->h, (size_t)n * d->Dm);
    op_linear(a->y, a->g, W(m, b, BP_FC2_W), W(m, b, BP_FC2_B), n, d->Dm, d->D);
    op_gate_residual(z, a->y, MOD(mod, GATE_M, d->D), d->ld, G, T, d->D);
}

static void mlp_backward(const Model *m, int b, float *dz, float *dmod, const float *mod, const MlpActs *a,
                         const Dims *d, int G, int T) {
    const Grads *g = &m->g;
    int n = G * T;
    ZERO(g->dy, (size_t)n * d->D);
    op_gate_residual_backward(g->dy, MOD(dmod, GATE_M, d->D), dz, a->y, MOD(mod, GATE_M, d->D), d->ld, G, T, d->D);
    ZERO(g->dgl, (size_t)n * d->Dm);
    op_linear_backward(g->dgl, dW(m, b, BP_FC2_W), dW(m, b, BP_FC2_B), g->dy, a->g, W(m, b, BP_FC2_W), n, d->Dm, d->D);
    ZERO(g->dh, (size_t)n * d->Dm);
    op_gelu_tanh_backward(g->dh, g->dgl, a->h, (size_t)n * d->Dm);
    ZERO(g->du, (size_t)n * d->D);
    op_linear_backward(g->du, dW(m, b, BP_FC1_W), dW(m, b, BP_FC1_B), g->dh, a->u, W(m, b, BP_FC1_W), n, d->D, d->Dm);
    ln_modulate_backward(dz, dmod, g->dxhat, g->du, a->xhat, a->rstd, mod, SHIFT_M, SCALE_M, d, G, T);
}

/* ---- reference pass ---- */

void ref_block_forward(Model *m, int b, int full) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    float *r = m->a.zr + d.N * d.D;
    const float *mod = k->mod + (size_t)d.B * d.ld;
    ln_modulate(k->r_xhat1, k->r_rstd1, k->bank, m->a.mean, r, mod, SHIFT_S, SCALE_S, &d, d.B, d.S);
    op_linear(k->r_qkv, k->bank, W(m, b, BP_QKV_W), W(m, b, BP_QKV_B), (int)d.Nr, d.D, 3 * d.D);
    if (!full) return;
#pragma omp parallel for
    for (int i = 0; i < d.B; i++) {
        const float *q = k->r_qkv + (size_t)i * d.S * 3 * d.D;
        KVSet kv = {q + d.D, q + 2 * d.D, 3 * d.D, d.S};
        op_attention(k->r_ao + (size_t)i * d.S * d.D, d.D, k->r_P + (size_t)i * d.NH * d.S * d.S, q, 3 * d.D, d.S,
                     &kv, 1, d.NH, d.dh);
    }
    op_linear(k->r_y1, k->r_ao, W(m, b, BP_PROJ_W), W(m, b, BP_PROJ_B), (int)d.Nr, d.D, d.D);
    op_gate_residual(r, k->r_y1, MOD(mod, GATE_S, d.D), d.ld, d.B, d.S, d.D);
    MlpActs a = {k->r_xhat2, k->r_rstd2, k->r_u2, k->r_h, k->r_g, k->r_y2};
    mlp_forward(m, b, r, mod, &a, &d, d.B, d.S);
}

void ref_block_backward(Model *m, int b, int full) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    const Grads *g = &m->g;
    float *dr = g->dzr + d.N * d.D;
    const float *mod = k->mod + (size_t)d.B * d.ld;
    float *dmod = g->dmod + (size_t)d.B * d.ld;
    if (full) {
        MlpActs a = {k->r_xhat2, k->r_rstd2, k->r_u2, k->r_h, k->r_g, k->r_y2};
        mlp_backward(m, b, dr, dmod, mod, &a, &d, d.B, d.S);
        ZERO(g->dy, d.Nr * d.D);
        op_gate_residual_backward(g->dy, MOD(dmod, GATE_S, d.D), dr, k->r_y1, MOD(mod, GATE_S, d.D), d.ld, d.B, d.S, d.D);
        ZERO(g->dao, d.Nr * d.D);
        op_linear_backward(g->dao, dW(m, b, BP_PROJ_W), dW(m, b, BP_PROJ_B), g->dy, k->r_ao, W(m, b, BP_PROJ_W),
                           (int)d.Nr, d.D, d.D);
#pragma omp parallel for
        for (int i = 0; i < d.B; i++) {
            size_t o = (size_t)i * d.S * 3 * d.D;
            const float *q = k->r_qkv + o;
            float *dq = g->dqkv_r + o;
            KVSet kv = {q + d.D, q + 2 * d.D, 3 * d.D, d.S};
            KVGrad dkv = {dq + d.D, dq + 2 * d.D};
            op_attention_backward(dq, 3 * d.D, &dkv, g->dao + (size_t)i * d.S * d.D, d.D,
                                  k->r_P + (size_t)i * d.NH * d.S * d.S, q, 3 * d.D, d.S, &kv, 1, d.NH, d.dh, DS(g));
        }
    }
    ZERO(g->dbank, d.Nr * d.D);
    op_linear_backward(g->dbank, dW(m, b, BP_QKV_W), dW(m, b, BP_QKV_B), g->dqkv_r, k->bank, W(m, b, BP_QKV_W),
                       (int)d.Nr, d.D, 3 * d.D);
    ln_modulate_backward(dr, dmod, g->dxhat, g->dbank, k->r_xhat1, k->r_rstd1, mod, SHIFT_S, SCALE_S, &d, d.B, d.S);
}

/* ---- video pass ---- */

void video_block_forward(Model *m, int b, const Batch *in) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    float *z = m->a.zr;
    const float *mod = k->mod;
    int FS = d.F * d.S, D3 = 3 * d.D;

    /* spatial: each frame's queries see its own S tokens and the sample's bank */
    ln_modulate(k->xhat1, k->rstd1, k->u1, m->a.mean, z, mod, SHIFT_S, SCALE_S, &d, d.B, FS);
    op_linear(k->qkv, k->u1, W(m, b, BP_QKV_W), W(m, b, BP_QKV_B), (int)d.N, d.D, D3);
#pragma omp parallel for collapse(2)
    for (int i = 0; i < d.B; i++)
        for (int f = 0; f < d.F; f++) {
            size_t fr = (size_t)i * d.F + f;
            const float *q = k->qkv + fr * d.S * D3, *rb = k->r_qkv + (size_t)i * d.S * D3;
            KVSet kv[2] = {{q + d.D, q + 2 * d.D, D3, d.S},
                           {in->drop_ref[i] ? NULL : rb + d.D, rb + 2 * d.D, D3, d.S}};
            op_attention(k->ao + fr * d.S * d.D, d.D, k->P + fr * d.NH * d.S * 2 * d.S, q, D3, d.S, kv, 2, d.NH, d.dh);
        }
    op_linear(k->y1, k->ao, W(m, b, BP_PROJ_W), W(m, b, BP_PROJ_B), (int)d.N, d.D, d.D);
    op_gate_residual(z, k->y1, MOD(mod, GATE_S, d.D), d.ld, d.B, FS, d.D);

    /* temporal: each spatial position attends across the F frames (strided rows) */
    if (d.F > 1) {
        ln_modulate(k->xhat2, k->rstd2, k->u2, m->a.mean, z, mod, SHIFT_T, SCALE_T, &d, d.B, FS);
        op_linear(k->qkvt, k->u2, W(m, b, BP_TQKV_W), W(m, b, BP_TQKV_B), (int)d.N, d.D, D3);
#pragma omp parallel for collapse(2)
        for (int i = 0; i < d.B; i++)
            for (int s = 0; s < d.S; s++) {
                size_t row = (size_t)i * FS + s;
                const float *q = k->qkvt + row * D3;
                KVSet kv = {q + d.D, q + 2 * d.D, d.S * D3, d.F};
                op_attention(k->aot + row * d.D, d.S * d.D, k->Pt + ((size_t)i * d.S + s) * d.NH * d.F * d.F, q,
                             d.S * D3, d.F, &kv, 1, d.NH, d.dh);
            }
        op_linear(k->y2, k->aot, W(m, b, BP_TPROJ_W), W(m, b, BP_TPROJ_B), (int)d.N, d.D, d.D);
        op_gate_residual(z, k->y2, MOD(mod, GATE_T, d.D), d.ld, d.B, FS, d.D);
    }

    MlpActs a = {k->xhat3, k->rstd3, k->u3, k->h, k->g, k->y3};
    mlp_forward(m, b, z, mod, &a, &d, d.B, FS);
}

void video_block_backward(Model *m, int b, const Batch *in) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    const Grads *g = &m->g;
    float *dz = g->dzr, *dmod = g->dmod;
    const float *mod = k->mod;
    int FS = d.F * d.S, D3 = 3 * d.D;

    MlpActs a = {k->xhat3, k->rstd3, k->u3, k->h, k->g, k->y3};
    mlp_backward(m, b, dz, dmod, mod, &a, &d, d.B, FS);

    if (d.F > 1) {
        ZERO(g->dy, d.N * d.D);
        op_gate_residual_backward(g->dy, MOD(dmod, GATE_T, d.D), dz, k->y2, MOD(mod, GATE_T, d.D), d.ld, d.B, FS, d.D);
        ZERO(g->dao, d.N * d.D);
        op_linear_backward(g->dao, dW(m, b, BP_TPROJ_W), dW(m, b, BP_TPROJ_B), g->dy, k->aot, W(m, b, BP_TPROJ_W),
                           (int)d.N, d.D, d.D);
        ZERO(g->dqkv, d.N * D3);
#pragma omp parallel for collapse(2)
        for (int i = 0; i < d.B; i++)
            for (int s = 0; s < d.S; s++) {
                size_t row = (size_t)i * FS + s;
                const float *q = k->qkvt + row * D3;
                float *dq = g->dqkv + row * D3;
                KVSet kv = {q + d.D, q + 2 * d.D, d.S * D3, d.F};
                KVGrad dkv = {dq + d.D, dq + 2 * d.D};
                op_attention_backward(dq, d.S * D3, &dkv, g->dao + row * d.D, d.S * d.D,
                                      k->Pt + ((size_t)i * d.S + s) * d.NH * d.F * d.F, q, d.S * D3, d.F, &kv, 1,
                                      d.NH, d.dh, DS(g));
            }
        ZERO(g->du, d.N * d.D);
        op_linear_backward(g->du, dW(m, b, BP_TQKV_W), dW(m, b, BP_TQKV_B), g->dqkv, k->u2, W(m, b, BP_TQKV_W),
                           (int)d.N, d.D, D3);
        ln_modulate_backward(dz, dmod, g->dxhat, g->du, k->xhat2, k->rstd2, mod, SHIFT_T, SCALE_T, &d, d.B, FS);
    }

    ZERO(g->dy, d.N * d.D);
    op_gate_residual_backward(g->dy, MOD(dmod, GATE_S, d.D), dz, k->y1, MOD(mod, GATE_S, d.D), d.ld, d.B, FS, d.D);
    ZERO(g->dao, d.N * d.D);
    op_linear_backward(g->dao, dW(m, b, BP_PROJ_W), dW(m, b, BP_PROJ_B), g->dy, k->ao, W(m, b, BP_PROJ_W), (int)d.N,
                       d.D, d.D);
    ZERO(g->dqkv, d.N * D3);
    /* one thread per sample: its F frames all add into the same bank gradient */
#pragma omp parallel for
    for (int i = 0; i < d.B; i++)
        for (int f = 0; f < d.F; f++) {
            size_t fr = (size_t)i * d.F + f;
            const float *q = k->qkv + fr * d.S * D3, *rb = k->r_qkv + (size_t)i * d.S * D3;
            float *dq = g->dqkv + fr * d.S * D3, *drb = g->dqkv_r + (size_t)i * d.S * D3;
            KVSet kv[2] = {{q + d.D, q + 2 * d.D, D3, d.S},
                           {in->drop_ref[i] ? NULL : rb + d.D, rb + 2 * d.D, D3, d.S}};
            KVGrad dkv[2] = {{dq + d.D, dq + 2 * d.D}, {drb + d.D, drb + 2 * d.D}};
            op_attention_backward(dq, D3, dkv, g->dao + fr * d.S * d.D, d.D, k->P + fr * d.NH * d.S * 2 * d.S, q, D3,
                                  d.S, kv, 2, d.NH, d.dh, DS(g));
        }
    ZERO(g->du, d.N * d.D);
    op_linear_backward(g->du, dW(m, b, BP_QKV_W), dW(m, b, BP_QKV_B), g->dqkv, k->u1, W(m, b, BP_QKV_W), (int)d.N,
                       d.D, D3);
    ln_modulate_backward(dz, dmod, g->dxhat, g->du, k->xhat1, k->rstd1, mod, SHIFT_S, SCALE_S, &d, d.B, FS);
}

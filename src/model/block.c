/* One EP-VDiT block (docs/model.md item 6) in both passes, forward and backward.
 * The reference pass computes its bank, the qkv of its modulated LayerNorm (whose k, v the
 * video pass attends to); the video pass runs spatial, temporal and MLP
 * sub-layers, each LayerNorm -> modulate -> op -> gated residual. */
#include "model/block.h"
#include "ops/ops.h"

#define ZERO(p, n) op_zero((p), (size_t)(n))

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

static const float *W(const Model *m, int b, int k) { return m->w + param_block(&m->pt, b, k)->offset; }
/* NULL for a frozen tensor: the ops then skip its weight-gradient product. */
static float *dW(const Model *m, int b, int k) { return model_cgrad(m, m->pt.blk0 + b * BP_COUNT + k); }

/* The three attention layouts (ops.h AttnShape) over the fused qkv buffers. */
AttnShape attn_shape_ref(const Model *m) {
    Dims d = dims(m);
    size_t D3 = 3 * (size_t)d.D;
    return (AttnShape){d.B, 1, d.S, d.NH, d.dh, d.S * D3, 0, (int)D3, 0, 0, 0, (size_t)d.S * d.D, 0, d.D};
}

/* Each frame's queries see its own S tokens and the sample's bank. */
AttnShape attn_shape_spatial(const Model *m) {
    Dims d = dims(m);
    size_t D3 = 3 * (size_t)d.D;
    return (AttnShape){d.B, d.F, d.S, d.NH, d.dh, (size_t)d.F * d.S * D3, d.S * D3, (int)D3, d.S * D3, (int)D3, d.S,
                       (size_t)d.F * d.S * d.D, (size_t)d.S * d.D, d.D};
}

/* Each spatial position attends across the F frames (rows S apart). */
AttnShape attn_shape_temporal(const Model *m) {
    Dims d = dims(m);
    size_t D3 = 3 * (size_t)d.D;
    return (AttnShape){d.B, d.S, d.F, d.NH, d.dh, (size_t)d.F * d.S * D3, D3, (int)(d.S * D3), 0, 0, 0,
                       (size_t)d.F * d.S * d.D, (size_t)d.D, d.S * d.D};
}

/* Offsets of the nine modulations inside a row of the table. */
enum { SHIFT_S, SCALE_S, GATE_S, SHIFT_T, SCALE_T, GATE_T, SHIFT_M, SCALE_M, GATE_M };
#define MOD(base, which, D) ((base) + (size_t)(which) * (D))

/* u = modulate(LN(x)) over G groups of T rows, in one pass; xhat (if not NULL) keeps LN(x). */
static void ln_modulate(float *xhat, float *rstd, float *u, float *mean, const float *x, const float *mod,
                        int shift, int scale, const Dims *d, int G, int T) {
    op_ln_modulate(u, xhat, mean, rstd, x, MOD(mod, shift, d->D), MOD(mod, scale, d->D), d->ld, G, T, d->D);
}

/* u = modulate(xhat) again for the weight gradient dw of the linear that
 * reads u; a frozen linear (dw NULL) needs only its weights, so no u. */
static void remodulate(const float *dw, float *u, const float *xhat, const float *mod, int shift, int scale,
                       const Dims *d, int G, int T) {
    if (dw) op_modulate(u, xhat, MOD(mod, shift, d->D), MOD(mod, scale, d->D), d->ld, G, T, d->D);
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

/* MLP sub-layer on a stream of G groups of T rows (shared by both passes);
 * its modulated LayerNorm output u and GELU output g live in Acts.u /
 * Acts.gelu only while they are used: backward recomputes g, and u is
 * rebuilt by the caller before mlp_backward (when fc1 trains). xhat is NULL
 * where backward rebuilds it too (the video pass). */
typedef struct { float *xhat, *rstd, *h, *y; } MlpActs;

static void mlp_forward(const Model *m, int b, float *z, const float *mod, const MlpActs *a, const Dims *d, int G,
                        int T) {
    int n = G * T;
    float *u = m->a.u, *g = m->a.gelu;
    ln_modulate(a->xhat, a->rstd, u, m->a.mean, z, mod, SHIFT_M, SCALE_M, d, G, T);
    op_linear_gelu(a->h, g, u, W(m, b, BP_FC1_W), W(m, b, BP_FC1_B), n, d->D, d->Dm);
    op_linear(a->y, g, W(m, b, BP_FC2_W), W(m, b, BP_FC2_B), n, d->Dm, d->D);
    op_gate_residual(z, a->y, MOD(mod, GATE_M, d->D), d->ld, G, T, d->D);
}

static void mlp_backward(const Model *m, int b, float *dz, float *dmod, const float *mod, const MlpActs *a,
                         const Dims *d, int G, int T) {
    const Grads *g = &m->g;
    int n = G * T;
    float *u = m->a.u, *gl = m->a.gelu;
    ZERO(g->dy, (size_t)n * d->D);
    op_gate_residual_backward(g->dy, MOD(dmod, GATE_M, d->D), dz, a->y, MOD(mod, GATE_M, d->D), d->ld, G, T, d->D);
    if (dW(m, b, BP_FC2_W)) op_gelu_tanh(gl, a->h, (size_t)n * d->Dm); /* fc2's input, for its weight gradient */
    /* dh := d/dh through fc2 and the GELU (written; g->dgl is the CPU's scratch) */
    op_linear_backward_dgelu(g->dh, dW(m, b, BP_FC2_W), dW(m, b, BP_FC2_B), g->dy, gl, W(m, b, BP_FC2_W), a->h,
                             g->dgl, n, d->Dm, d->D);
    ZERO(g->du, (size_t)n * d->D);
    op_linear_backward(g->du, dW(m, b, BP_FC1_W), dW(m, b, BP_FC1_B), g->dh, u, W(m, b, BP_FC1_W), n, d->D, d->Dm);
    ln_modulate_backward(dz, dmod, g->dxhat, g->du, a->xhat, a->rstd, mod, SHIFT_M, SCALE_M, d, G, T);
}

/* ---- reference pass ---- */

static void ref_forward(Model *m, int b, int full) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    float *r = m->a.zr + d.N * d.D;
    const float *mod = k->mod + (size_t)d.B * d.ld;
    ln_modulate(k->r_xhat1, k->r_rstd1, m->a.u, m->a.mean, r, mod, SHIFT_S, SCALE_S, &d, d.B, d.S);
    op_linear(k->r_qkv, m->a.u, W(m, b, BP_QKV_W), W(m, b, BP_QKV_B), (int)d.Nr, d.D, 3 * d.D);
    if (!full) return;
    AttnShape as = attn_shape_ref(m);
    op_attention(&as, k->r_ao, k->r_P, k->r_qkv, NULL, NULL);
    op_linear(k->r_y1, k->r_ao, W(m, b, BP_PROJ_W), W(m, b, BP_PROJ_B), (int)d.Nr, d.D, d.D);
    op_gate_residual(r, k->r_y1, MOD(mod, GATE_S, d.D), d.ld, d.B, d.S, d.D);
    MlpActs a = {k->r_xhat2, k->r_rstd2, k->r_h, k->r_y2};
    mlp_forward(m, b, r, mod, &a, &d, d.B, d.S);
}

void ref_block_forward(Model *m, int b, int full) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    if (k->r_z0 && b >= m->first_bwd) /* recompute: backward reruns the block from it */
        ops_copy(k->r_z0, m->a.zr + d.N * d.D, d.Nr * d.D * sizeof(float));
    ref_forward(m, b, full);
}

/* Like video_block_recompute, on the reference stream (also unread during
 * backward); its bank qkv comes out as forward left it. */
void ref_block_recompute(Model *m, int b, int full) {
    Dims d = dims(m);
    ops_copy(m->a.zr + d.N * d.D, m->a.blk[b].r_z0, d.Nr * d.D * sizeof(float));
    ops_count_flops(0);
    ref_forward(m, b, full);
    ops_count_flops(1);
}

void ref_block_backward(Model *m, int b, int full) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    const Grads *g = &m->g;
    float *dr = g->dzr + d.N * d.D;
    const float *mod = k->mod + (size_t)d.B * d.ld;
    float *dmod = g->dmod + (size_t)d.B * d.ld;
    if (full) {
        MlpActs a = {k->r_xhat2, k->r_rstd2, k->r_h, k->r_y2};
        remodulate(dW(m, b, BP_FC1_W), m->a.u, k->r_xhat2, mod, SHIFT_M, SCALE_M, &d, d.B, d.S);
        mlp_backward(m, b, dr, dmod, mod, &a, &d, d.B, d.S);
        ZERO(g->dy, d.Nr * d.D);
        op_gate_residual_backward(g->dy, MOD(dmod, GATE_S, d.D), dr, k->r_y1, MOD(mod, GATE_S, d.D), d.ld, d.B, d.S, d.D);
        ZERO(g->dao, d.Nr * d.D);
        op_linear_backward(g->dao, dW(m, b, BP_PROJ_W), dW(m, b, BP_PROJ_B), g->dy, k->r_ao, W(m, b, BP_PROJ_W),
                           (int)d.Nr, d.D, d.D);
        AttnShape as = attn_shape_ref(m);
        op_attention_backward(&as, g->dqkv_r, NULL, g->dao, k->r_ao, k->r_P, k->r_qkv, NULL, NULL, g->dS);
    }
    ZERO(g->dbank, d.Nr * d.D);
    remodulate(dW(m, b, BP_QKV_W), m->a.u, k->r_xhat1, mod, SHIFT_S, SCALE_S, &d, d.B, d.S);
    op_linear_backward(g->dbank, dW(m, b, BP_QKV_W), dW(m, b, BP_QKV_B), g->dqkv_r, m->a.u, W(m, b, BP_QKV_W),
                       (int)d.Nr, d.D, 3 * d.D);
    ln_modulate_backward(dr, dmod, g->dxhat, g->dbank, k->r_xhat1, k->r_rstd1, mod, SHIFT_S, SCALE_S, &d, d.B, d.S);
}

/* ---- video pass ---- */

/* u += the frame embedding of each row's frame, when the model adds it to the
 * temporal attention's input (frame_embed = temporal). A constant added to u:
 * u's gradient passes through unchanged, only the rebuilt u for tqkv's weight
 * gradient needs it again. */
static void temporal_frame_embed(const Model *m, float *u) {
    if (!shape_frame_embed_temporal(&m->shape)) return;
    Dims d = dims(m);
    op_add_pos(u, NULL, m->frame_emb, d.N, d.N, d.S, d.F, d.D);
}

/* The video pass of block b on the stream m->a.zr (in place). */
static void video_forward(Model *m, int b, const Batch *in) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    float *z = m->a.zr;
    const float *mod = k->mod;
    int FS = d.F * d.S, D3 = 3 * d.D;

    /* spatial: each frame's queries see its own S tokens and the sample's bank */
    ln_modulate(NULL, m->a.rstd, m->a.u, m->a.mean, z, mod, SHIFT_S, SCALE_S, &d, d.B, FS);
    op_linear(k->qkv, m->a.u, W(m, b, BP_QKV_W), W(m, b, BP_QKV_B), (int)d.N, d.D, D3);
    AttnShape as = attn_shape_spatial(m);
    op_attention(&as, k->ao, k->P, k->qkv, k->r_qkv, in->drop_ref);
    op_linear(k->y1, k->ao, W(m, b, BP_PROJ_W), W(m, b, BP_PROJ_B), (int)d.N, d.D, d.D);
    op_gate_residual(z, k->y1, MOD(mod, GATE_S, d.D), d.ld, d.B, FS, d.D);

    /* temporal: each spatial position attends across the F frames (strided rows) */
    if (d.F > 1) {
        ln_modulate(NULL, m->a.rstd, m->a.u, m->a.mean, z, mod, SHIFT_T, SCALE_T, &d, d.B, FS);
        temporal_frame_embed(m, m->a.u);
        op_linear(k->qkvt, m->a.u, W(m, b, BP_TQKV_W), W(m, b, BP_TQKV_B), (int)d.N, d.D, D3);
        AttnShape at = attn_shape_temporal(m);
        op_attention(&at, k->aot, k->Pt, k->qkvt, NULL, NULL);
        op_linear(k->y2, k->aot, W(m, b, BP_TPROJ_W), W(m, b, BP_TPROJ_B), (int)d.N, d.D, d.D);
        op_gate_residual(z, k->y2, MOD(mod, GATE_T, d.D), d.ld, d.B, FS, d.D);
    }

    MlpActs a = {NULL, m->a.rstd, k->h, k->y3};
    mlp_forward(m, b, z, mod, &a, &d, d.B, FS);
}

void video_block_forward(Model *m, int b, const Batch *in) {
    Dims d = dims(m);
    if (!m->forward_only && b >= m->first_bwd) /* backward rebuilds the LayerNorm inputs (and more) from it */
        ops_copy(m->a.blk[b].z0, m->a.zr, d.N * d.D * sizeof(float));
    video_forward(m, b, in);
}

/* The video stream is free during backward (nothing reads it after the
 * final layer), so the block reruns on it from its input. */
void video_block_recompute(Model *m, int b, const Batch *in) {
    Dims d = dims(m);
    ops_copy(m->a.zr, m->a.blk[b].z0, d.N * d.D * sizeof(float));
    ops_count_flops(0);
    video_forward(m, b, in);
    ops_count_flops(1);
}

/* Acts.xhat, Acts.rstd := the LayerNorm in front of sub-layer `sub` (0
 * spatial, 1 temporal, 2 MLP) as forward computed it: the block's input plus
 * the gated branches before that sub-layer, added in forward's order; and
 * Acts.u := its modulated output when dw, the weight gradient of the linear
 * reading u, is wanted. */
static void relayernorm(Model *m, int b, int sub, int shift, int scale, const float *dw) {
    Dims d = dims(m);
    const BlockActs *k = &m->a.blk[b];
    int FS = d.F * d.S;
    const float *x = k->z0;
    if (sub > 0) {
        ops_copy(m->a.zs, k->z0, d.N * d.D * sizeof(float));
        op_gate_residual(m->a.zs, k->y1, MOD(k->mod, GATE_S, d.D), d.ld, d.B, FS, d.D);
        if (sub > 1 && d.F > 1) op_gate_residual(m->a.zs, k->y2, MOD(k->mod, GATE_T, d.D), d.ld, d.B, FS, d.D);
        x = m->a.zs;
    }
    ln_modulate(m->a.xhat, m->a.rstd, dw ? m->a.u : NULL, m->a.mean, x, k->mod, shift, scale, &d, d.B, FS);
}

void video_block_backward(Model *m, int b, const Batch *in) {
    Dims d = dims(m);
    BlockActs *k = &m->a.blk[b];
    const Grads *g = &m->g;
    float *dz = g->dzr, *dmod = g->dmod;
    const float *mod = k->mod;
    int FS = d.F * d.S, D3 = 3 * d.D;

    MlpActs a = {m->a.xhat, m->a.rstd, k->h, k->y3};
    relayernorm(m, b, 2, SHIFT_M, SCALE_M, dW(m, b, BP_FC1_W));
    mlp_backward(m, b, dz, dmod, mod, &a, &d, d.B, FS);

    if (d.F > 1) {
        ZERO(g->dy, d.N * d.D);
        op_gate_residual_backward(g->dy, MOD(dmod, GATE_T, d.D), dz, k->y2, MOD(mod, GATE_T, d.D), d.ld, d.B, FS, d.D);
        ZERO(g->dao, d.N * d.D);
        op_linear_backward(g->dao, dW(m, b, BP_TPROJ_W), dW(m, b, BP_TPROJ_B), g->dy, k->aot, W(m, b, BP_TPROJ_W),
                           (int)d.N, d.D, d.D);
        ZERO(g->dqkv, d.N * D3);
        AttnShape at = attn_shape_temporal(m);
        op_attention_backward(&at, g->dqkv, NULL, g->dao, k->aot, k->Pt, k->qkvt, NULL, NULL, g->dS);
        ZERO(g->du, d.N * d.D);
        relayernorm(m, b, 1, SHIFT_T, SCALE_T, dW(m, b, BP_TQKV_W));
        if (dW(m, b, BP_TQKV_W)) temporal_frame_embed(m, m->a.u);
        op_linear_backward(g->du, dW(m, b, BP_TQKV_W), dW(m, b, BP_TQKV_B), g->dqkv, m->a.u, W(m, b, BP_TQKV_W),
                           (int)d.N, d.D, D3);
        ln_modulate_backward(dz, dmod, g->dxhat, g->du, m->a.xhat, m->a.rstd, mod, SHIFT_T, SCALE_T, &d, d.B, FS);
    }

    ZERO(g->dy, d.N * d.D);
    op_gate_residual_backward(g->dy, MOD(dmod, GATE_S, d.D), dz, k->y1, MOD(mod, GATE_S, d.D), d.ld, d.B, FS, d.D);
    ZERO(g->dao, d.N * d.D);
    op_linear_backward(g->dao, dW(m, b, BP_PROJ_W), dW(m, b, BP_PROJ_B), g->dy, k->ao, W(m, b, BP_PROJ_W), (int)d.N,
                       d.D, d.D);
    ZERO(g->dqkv, d.N * D3);
    AttnShape as = attn_shape_spatial(m);
    op_attention_backward(&as, g->dqkv, g->dqkv_r, g->dao, k->ao, k->P, k->qkv, k->r_qkv, in->drop_ref, g->dS);
    ZERO(g->du, d.N * d.D);
    relayernorm(m, b, 0, SHIFT_S, SCALE_S, dW(m, b, BP_QKV_W));
    op_linear_backward(g->du, dW(m, b, BP_QKV_W), dW(m, b, BP_QKV_B), g->dqkv, m->a.u, W(m, b, BP_QKV_W), (int)d.N,
                       d.D, D3);
    ln_modulate_backward(dz, dmod, g->dxhat, g->du, m->a.xhat, m->a.rstd, mod, SHIFT_S, SCALE_S, &d, d.B, FS);
}

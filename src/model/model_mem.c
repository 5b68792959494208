/* Model memory: parameters and gradients in one allocation each, and every
 * activation and backward scratch buffer carved from one more (two passes:
 * the first only counts, the second hands out pointers). */
#include "core/die.h"
#include "ops/embed.h"
#include "core/mem.h"
#include "model/block.h"
#include "model/model.h"
#include "ops/ops.h"
#include <stdlib.h>
#include <string.h>

typedef struct { float *base; size_t used; } Carver;

static float *take(Carver *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15; /* 64-byte alignment for every buffer */
    return p;
}

/* The activations of one block that recompute can share: the video pass's
 * (all but its input z0) and the reference pass's (all but its input and
 * the bank's qkv, which the video pass reads). */
static void carve_shareable(const Model *m, Carver *c, BlockActs *k) {
    const ModelShape *s = &m->shape;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), Dm = shape_Dm(s);
    size_t N = (size_t)B * F * S, Nr = (size_t)B * S;
    AttnShape ar = attn_shape_ref(m), as = attn_shape_spatial(m), at = attn_shape_temporal(m);
    k->r_xhat1 = take(c, Nr * D);
    k->r_rstd1 = take(c, Nr);
    k->r_P = take(c, op_attention_state_floats(&ar));
    k->r_ao = take(c, Nr * D);
    k->r_y1 = take(c, Nr * D);
    k->r_xhat2 = take(c, Nr * D);
    k->r_rstd2 = take(c, Nr);
    k->r_h = take(c, Nr * Dm);
    k->r_y2 = take(c, Nr * D);
    k->qkv = take(c, N * 3 * D);
    k->P = take(c, op_attention_state_floats(&as));
    k->ao = take(c, N * D);
    k->y1 = take(c, N * D);
    if (F > 1) {
        k->qkvt = take(c, N * 3 * D);
        k->Pt = take(c, op_attention_state_floats(&at));
        k->aot = take(c, N * D);
        k->y2 = take(c, N * D);
    }
    k->h = take(c, N * Dm);
    k->y3 = take(c, N * D);
}

/* One block's activations; with `shared` (recompute) it keeps only its
 * inputs, modulation and bank qkv, and uses that one set for the rest,
 * which backward refills block by block. */
static void carve_block(const Model *m, Carver *c, BlockActs *k, const BlockActs *shared) {
    const ModelShape *s = &m->shape;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s);
    size_t N = (size_t)B * F * S, Nr = (size_t)B * S;
    if (shared) *k = *shared;
    else carve_shareable(m, c, k);
    k->mod = take(c, (size_t)2 * B * 9 * D);
    k->r_qkv = take(c, Nr * 3 * D);
    k->z0 = take(c, N * D);
    k->r_z0 = shared ? take(c, Nr * D) : NULL;
}

static void layout_acts(Model *m, Carver *c) {
    const ModelShape *s = &m->shape;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), G = shape_G(s);
    size_t N = (size_t)B * F * S, Nr = (size_t)B * S, BF = (size_t)B * F;
    int K = s->C * s->p * s->p;
    Acts *a = &m->a;
    a->temb = take(c, 2 * B * 256);
    a->th1 = take(c, 2 * B * D);
    a->ta1 = take(c, 2 * B * D);
    a->c = take(c, 2 * B * D);
    a->sc = take(c, 2 * B * D);
    a->xp = take(c, (N + Nr) * K);
    a->zr = take(c, (N + Nr) * D);
    /* the pose guider keeps every level for its backward; without one (the
     * input side frozen, or inference) two buffers alternate between the
     * levels and each level's SiLU runs in place */
    if (m->input_grads && !m->forward_only) {
        for (int l = 0; l <= G; l++) {
            size_t hw = (size_t)(s->s * s->H >> l) * (s->s * s->W >> l);
            a->pg_pre[l] = take(c, BF * s->Cg * hw);
            a->pg_act[l] = take(c, BF * s->Cg * hw);
        }
    } else {
        float *buf[2];
        for (int l = 0; l < 2; l++) buf[l] = take(c, BF * s->Cg * ((size_t)(s->s * s->H >> l) * (s->s * s->W >> l)));
        for (int l = 0; l <= G; l++) a->pg_pre[l] = a->pg_act[l] = buf[l % 2];
    }
    a->pg_tok = take(c, N * s->Cg * s->p * s->p);
    a->pg_patch = take(c, N * D);
    a->pg_out = take(c, N * D);
    a->fmod = take(c, (size_t)B * 2 * D);
    a->xhatf = take(c, N * D);
    a->rstdf = take(c, N);
    a->uf = take(c, N * D);
    a->fout = take(c, N * s->p * s->p * s->C);
    a->mean = take(c, N + Nr);
    a->rstd = take(c, N);
    a->xhat = a->zs = NULL; /* backward's: the video LayerNorm rebuilt from z0 */
    if (!m->forward_only) {
        a->xhat = take(c, N * D);
        a->zs = take(c, N * D);
    }
    a->u = take(c, N * D);
    a->gelu = take(c, N * shape_Dm(s));
    /* im2col scratch of both passes: the largest conv is conv_in or a 3x3 over the full pose map */
    int cin = s->Cp > s->Cg ? s->Cp : s->Cg;
    m->g.col = take(c, op_conv2d_scratch_floats(cin, s->s * s->H, s->s * s->W, 3));
    if (!ops_host_memory()) { /* inputs and outputs pass through here on their way to the device */
        size_t img = (size_t)s->C * s->H * s->W, bytes = ((size_t)B + 3) / 4, hw0 = (size_t)(s->s * s->H) * (s->s * s->W);
        m->stage.x = take(c, BF * img);
        m->stage.ref = take(c, (size_t)B * img);
        m->stage.pose = take(c, BF * s->Cp * hw0);
        m->stage.eps = take(c, BF * img);
        m->stage.deps = take(c, BF * img);
        m->stage.t = (int *)take(c, (size_t)B);
        m->stage.drop_ref = (uint8_t *)take(c, bytes);
        m->stage.drop_pose = (uint8_t *)take(c, bytes);
    }
    /* blocks before act_first share one set (act_first_for); recomputing
     * blocks rerun into one more (all recompute) or into the last block's
     * (only some do: model_recomputes), which is then carved first */
    BlockActs shared = {0};
    int into_last = m->recompute && !m->forward_only && m->recompute_blocks > 0;
    if (into_last) {
        carve_block(m, c, &a->blk[s->L - 1], NULL);
        shared = a->blk[s->L - 1];
    } else if (m->recompute && !m->forward_only) {
        carve_shareable(m, c, &shared);
    }
    for (int b = 0; b < s->L; b++) {
        if (into_last && b == s->L - 1) continue;
        if (b > 0 && b < m->act_first) a->blk[b] = a->blk[0];
        else carve_block(m, c, &a->blk[b], model_recomputes(m, b) ? &shared : NULL);
    }
}

static void layout_grads(Model *m, Carver *c) {
    const ModelShape *s = &m->shape;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), Dm = shape_Dm(s);
    size_t N = (size_t)B * F * S, Nr = (size_t)B * S, BF = (size_t)B * F;
    size_t hw0 = (size_t)(s->s * s->H) * (s->s * s->W);
    Grads *g = &m->g;
    g->dzr = take(c, (N + Nr) * D);
    g->dxhat = take(c, N * D);
    g->du = take(c, N * D);
    g->dy = take(c, N * D);
    g->dao = take(c, N * D);
    g->dqkv = take(c, N * 3 * D);
    g->dqkv_r = take(c, Nr * 3 * D);
    g->dbank = take(c, Nr * D);
    g->dh = take(c, N * Dm);
    g->dgl = take(c, N * Dm);
    g->dmod = take(c, (size_t)2 * B * 9 * D);
    g->dsc = take(c, (size_t)2 * B * D);
    g->dc = take(c, (size_t)2 * B * D);
    g->dt1 = take(c, (size_t)2 * B * D);
    g->dfout = take(c, N * s->p * s->p * s->C);
    /* the pose guider's backward runs only when the input side trains: its
     * level-0 buffers are the largest scratch at full pose resolution */
    g->dpg_tok = g->dpg_patch = g->dpg_out = g->dpg_a = g->dpg_b = NULL;
    if (m->input_grads) {
        g->dpg_tok = take(c, N * s->Cg * s->p * s->p);
        g->dpg_patch = take(c, N * D);
        g->dpg_out = take(c, N * D);
        g->dpg_a = take(c, BF * s->Cg * hw0);
        g->dpg_b = take(c, BF * s->Cg * hw0);
    }
    AttnShape ar = attn_shape_ref(m), as = attn_shape_spatial(m), at = attn_shape_temporal(m);
    size_t ds = op_attention_scratch_floats(&ar), ds2 = op_attention_scratch_floats(&as);
    ds = ds2 > ds ? ds2 : ds;
    if (F > 1) {
        size_t ds3 = op_attention_scratch_floats(&at);
        ds = ds3 > ds ? ds3 : ds;
    }
    g->dS = take(c, ds);
}

/* Packs the gradients of the tensors in m->trainable (table order) and finds
 * how far back the backward pass must go. */
static void grad_layout(Model *m) {
    const ParamTable *pt = &m->pt;
    m->grad_size = 0;
    m->input_grads = 0;
    m->first_bwd = m->shape.L;
    for (int i = 0; i < pt->n; i++) {
        if (!m->trainable[i]) {
            m->grad_off[i] = NO_GRAD;
            continue;
        }
        m->grad_off[i] = m->grad_size;
        m->grad_size += pt->info[i].numel; /* unpadded: with all trainable, grad_off == param offset */
        int b = pt->info[i].block;
        if (i < pt->blk0) m->input_grads = 1;
        else if (b >= 0 && b < m->first_bwd) m->first_bwd = b;
    }
    if (m->input_grads) m->first_bwd = 0;
}

/* Blocks before this one share one set of activations: those backward never
 * reaches, and every block of an inference model (forward_only: nothing
 * reads a block's activations after the next block runs). */
static int act_first_for(const Model *m) { return m->forward_only ? m->shape.L : m->first_bwd; }

/* (Re)carves activations and backward scratch for the current B, F, act_first. */
static void alloc_acts(Model *m) {
    ops_free(m->act_mem);
    ops_free(m->grad_mem);
    Carver c = {0};
    layout_acts(m, &c);
    m->act_floats = c.used;
    m->act_mem = ops_alloc(c.used * sizeof(float), "activations");
    c = (Carver){m->act_mem, 0};
    layout_acts(m, &c);
    m->grad_mem = NULL, m->scratch_floats = 0;
    m->scratch_inputs = m->input_grads;
    if (m->forward_only) return;
    c = (Carver){0};
    layout_grads(m, &c);
    m->scratch_floats = c.used;
    m->grad_mem = ops_alloc(c.used * sizeof(float), "backward scratch");
    c = (Carver){m->grad_mem, 0};
    layout_grads(m, &c);
}

/* What model_set_batch(m, B, F) would allocate for activations and backward
 * scratch, in floats, without allocating it (the counting pass on a copy). */
void model_plan(const Model *m, int B, int F, size_t *act_floats, size_t *scratch_floats) {
    Model t = *m;
    int G = shape_G(&m->shape);
    t.B = B;
    t.shape.F = F;
    t.act_first = act_first_for(&t);
    t.a.blk = ep_calloc(m->shape.L, sizeof(BlockActs), "plan");
    t.a.pg_pre = ep_calloc(G + 1, sizeof(float *), "plan");
    t.a.pg_act = ep_calloc(G + 1, sizeof(float *), "plan");
    Carver c = {0};
    layout_acts(&t, &c);
    *act_floats = c.used;
    c = (Carver){0};
    if (!m->forward_only) layout_grads(&t, &c);
    *scratch_floats = c.used;
    free(t.a.blk);
    free(t.a.pg_pre);
    free(t.a.pg_act);
}

/* model_plan for another trainable set (mask [pt.n]), and its gradient floats. */
void model_plan_mask(const Model *m, const uint8_t *mask, int B, int F, size_t *act_floats, size_t *scratch_floats,
                     size_t *grad_floats) {
    Model t = *m;
    t.trainable = ep_malloc(m->pt.n, "plan");
    t.grad_off = ep_malloc(m->pt.n * sizeof(size_t), "plan");
    memcpy(t.trainable, mask, m->pt.n);
    grad_layout(&t);
    *grad_floats = t.grad_size;
    model_plan(&t, B, F, act_floats, scratch_floats);
    free(t.trainable);
    free(t.grad_off);
}

/* The packed gradients, on the host and (on CUDA) their device twin. */
static void alloc_grads(Model *m) {
    if (m->cgrads != m->grads) ops_free(m->cgrads);
    ops_unpin(m->grads);
    mem_free(m->grads);
    m->grad_cap = m->grad_size;
    m->cgrads_zero = 0;
    m->grads = mem_alloc(m->grad_cap * sizeof(float), "gradients");
    ops_pin(m->grads, m->grad_cap * sizeof(float));
    m->cgrads = ops_host_memory() ? m->grads : ops_alloc(m->grad_cap * sizeof(float), "device gradients");
}

/* A fixed table computed on the host, placed in backend memory. */
static float *backend_table(const float *host, size_t n, const char *what) {
    float *p = ops_alloc(n * sizeof(float), what);
    ops_upload(p, host, n * sizeof(float));
    return p;
}

void model_create(Model *m, const ModelShape *shape) {
    memset(m, 0, sizeof *m);
    m->shape = *shape;
    param_table_build(&m->pt, shape);
    m->params = mem_alloc(m->pt.total * sizeof(float), "parameters");
    m->w = ops_host_memory() ? m->params : ops_alloc(m->pt.total * sizeof(float), "device parameters");
    ops_pin(m->params, m->pt.total * sizeof(float)); /* crosses to the device on a GPU */
    m->host_current = 1;
    m->trainable = ep_malloc(m->pt.n, "trainable mask");
    memset(m->trainable, 1, m->pt.n);
    m->grad_off = ep_malloc(m->pt.n * sizeof(size_t), "gradient layout");
    grad_layout(m); /* the gradient buffer comes with the activations, once the trainable set is known */
    int G = shape_G(shape);
    m->a.pg_pre = ep_calloc(G + 1, sizeof(float *), "pose guider");
    m->a.pg_act = ep_calloc(G + 1, sizeof(float *), "pose guider");
    m->a.blk = ep_calloc(shape->L, sizeof(BlockActs), "block activations");
    size_t npos = (size_t)shape_S(shape) * shape->D;
    float *pos = ep_malloc(npos * sizeof(float), "position embedding");
    embed_pos2d(pos, shape->D, shape->H / shape->p, shape->W / shape->p);
    m->pos = backend_table(pos, npos, "position embedding");
    free(pos);
}

void model_set_batch(Model *m, int B, int F) {
    if (m->act_mem && m->B == B && m->shape.F == F) return;
    ops_free(m->frame_emb);
    m->B = B;
    m->shape.F = F;
    m->act_first = act_first_for(m);
    alloc_acts(m);
    if (!m->forward_only && (m->grad_cap < m->grad_size || !m->grads)) alloc_grads(m);
    size_t nf = (size_t)F * m->shape.D;
    float *fe = ep_malloc(nf * sizeof(float), "frame embedding");
    embed_frames(fe, m->shape.D, F);
    m->frame_emb = backend_table(fe, nf, "frame embedding");
    free(fe);
}

void model_set_trainable(Model *m, const uint8_t *mask, int exact) {
    memcpy(m->trainable, mask, m->pt.n);
    grad_layout(m);
    if (m->act_mem && !m->forward_only && (m->grad_size > m->grad_cap || (exact && m->grad_size != m->grad_cap)))
        alloc_grads(m);
    int refit = m->first_bwd < m->act_first || (exact && m->first_bwd != m->act_first) ||
                (m->input_grads && !m->scratch_inputs) || (exact && m->input_grads != m->scratch_inputs);
    if (m->act_mem && refit) {
        m->act_first = act_first_for(m);
        alloc_acts(m);
    }
}

void model_destroy(Model *m) {
    if (m->w != m->params) ops_free(m->w);
    if (m->cgrads != m->grads) ops_free(m->cgrads);
    ops_unpin(m->params);
    ops_unpin(m->grads);
    mem_free(m->params);
    mem_free(m->grads);
    ops_free(m->act_mem);
    ops_free(m->grad_mem);
    free(m->trainable);
    free(m->grad_off);
    free(m->a.pg_pre);
    free(m->a.pg_act);
    free(m->a.blk);
    ops_free(m->pos);
    ops_free(m->frame_emb);
    param_table_free(&m->pt);
    memset(m, 0, sizeof *m);
}

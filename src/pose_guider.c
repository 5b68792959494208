#include "pose_guider.h"
#include "ops.h"
#include <omp.h>
#include <string.h>

static const float *P(const Model *m, int idx) { return m->params + m->pt.info[idx].offset; }
static float *G(const Model *m, int idx) { return model_grad(m, idx); }

/* Side length of level l (0 = full pose resolution). */
static int side(int n, int l) { return n >> l; }

/* This thread's im2col scratch. */
static float *col(const Model *m) { return m->g.col + (size_t)omp_get_thread_num() * m->g.col_stride; }

void pose_guider_forward(Model *m, const Batch *in) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    int BF = m->B * s->F, Cg = s->Cg, Gn = m->pt.G, sH = s->s * s->H, sW = s->s * s->W, S = shape_S(s);
    size_t hw0 = (size_t)sH * sW;
#pragma omp parallel for
    for (int f = 0; f < BF; f++)
        op_conv2d(a->pg_pre[0] + f * Cg * hw0, in->pose + f * s->Cp * hw0, P(m, m->pt.pg_in_w), P(m, m->pt.pg_in_b),
                  s->Cp, sH, sW, Cg, 3, 1, 1, col(m));
    op_silu(a->pg_act[0], a->pg_pre[0], BF * Cg * hw0);
    for (int l = 1; l <= Gn; l++) {
        int hi = side(sH, l - 1), wi = side(sW, l - 1);
        size_t in_sz = (size_t)Cg * hi * wi, out_sz = (size_t)Cg * side(sH, l) * side(sW, l);
        int wi_idx = m->pt.pg_down_w0 + 2 * (l - 1);
#pragma omp parallel for
        for (int f = 0; f < BF; f++)
            op_conv2d(a->pg_pre[l] + f * out_sz, a->pg_act[l - 1] + f * in_sz, P(m, wi_idx), P(m, wi_idx + 1), Cg, hi,
                      wi, Cg, 3, 2, 1, col(m));
        op_silu(a->pg_act[l], a->pg_pre[l], BF * out_sz);
    }
    int K = Cg * s->p * s->p;
    size_t map = (size_t)Cg * s->H * s->W;
    for (int f = 0; f < BF; f++)
        op_patchify(a->pg_tok + (size_t)f * S * K, a->pg_act[Gn] + f * map, Cg, s->H, s->W, s->p);
    op_linear(a->pg_patch, a->pg_tok, P(m, m->pt.pg_patch_w), P(m, m->pt.pg_patch_b), BF * S, K, s->D);
    op_linear(a->pg_out, a->pg_patch, P(m, m->pt.pg_zero_w), P(m, m->pt.pg_zero_b), BF * S, s->D, s->D);
}

void pose_guider_backward(Model *m, const Batch *in) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    Grads *g = &m->g;
    int B = m->B, BF = B * s->F, Cg = s->Cg, Gn = m->pt.G, sH = s->s * s->H, sW = s->s * s->W, S = shape_S(s);
    int D = s->D, K = Cg * s->p * s->p;
    size_t FSD = (size_t)s->F * S * D, N = (size_t)BF * S;
    /* drop_pose zeroes this branch, and so its gradient */
    for (int i = 0; i < B; i++) {
        float keep = in->drop_pose[i] ? 0.0f : 1.0f;
        for (size_t j = 0; j < FSD; j++) g->dpg_out[i * FSD + j] = keep * g->dzr[i * FSD + j];
    }
    memset(g->dpg_patch, 0, N * D * sizeof(float));
    op_linear_backward(g->dpg_patch, G(m, m->pt.pg_zero_w), G(m, m->pt.pg_zero_b), g->dpg_out, a->pg_patch,
                       P(m, m->pt.pg_zero_w), (int)N, D, D);
    memset(g->dpg_tok, 0, N * K * sizeof(float));
    op_linear_backward(g->dpg_tok, G(m, m->pt.pg_patch_w), G(m, m->pt.pg_patch_b), g->dpg_patch, a->pg_tok,
                       P(m, m->pt.pg_patch_w), (int)N, K, D);
    size_t map = (size_t)Cg * s->H * s->W;
    memset(g->dpg_a, 0, BF * map * sizeof(float));
    for (int f = 0; f < BF; f++)
        op_patchify_backward(g->dpg_a + f * map, g->dpg_tok + (size_t)f * S * K, Cg, s->H, s->W, s->p);
    /* dpg_a holds d/d act of level l; dpg_b gets d/d pre; conv backward refills dpg_a one level up */
    for (int l = Gn; l >= 0; l--) {
        size_t out_sz = (size_t)Cg * side(sH, l) * side(sW, l);
        memset(g->dpg_b, 0, BF * out_sz * sizeof(float));
        op_silu_backward(g->dpg_b, g->dpg_a, a->pg_pre[l], BF * out_sz);
        if (l == 0) {
            size_t in_sz = (size_t)s->Cp * sH * sW;
            for (int f = 0; f < BF; f++)
                op_conv2d_backward(NULL, G(m, m->pt.pg_in_w), G(m, m->pt.pg_in_b), g->dpg_b + f * out_sz,
                                   in->pose + f * in_sz, P(m, m->pt.pg_in_w), s->Cp, sH, sW, Cg, 3, 1, 1, col(m));
        } else {
            int hi = side(sH, l - 1), wi = side(sW, l - 1), idx = m->pt.pg_down_w0 + 2 * (l - 1);
            size_t in_sz = (size_t)Cg * hi * wi;
            memset(g->dpg_a, 0, BF * in_sz * sizeof(float));
            for (int f = 0; f < BF; f++)
                op_conv2d_backward(g->dpg_a + f * in_sz, G(m, idx), G(m, idx + 1), g->dpg_b + f * out_sz,
                                   a->pg_act[l - 1] + f * in_sz, P(m, idx), Cg, hi, wi, Cg, 3, 2, 1, col(m));
        }
    }
}

#include "model/pose_guider.h"
#include "ops/ops.h"

static const float *P(const Model *m, int idx) { return m->w + m->pt.info[idx].offset; }
static float *G(const Model *m, int idx) { return model_cgrad(m, idx); }

/* Side length of level l (0 = full pose resolution). */
static int side(int n, int l) { return n >> l; }

void pose_guider_forward(Model *m, const Batch *in) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    int BF = m->B * s->F, Cg = s->Cg, Gn = m->pt.G, sH = s->s * s->H, sW = s->s * s->W, S = shape_S(s);
    size_t hw0 = (size_t)sH * sW;
    op_conv2d(a->pg_pre[0], in->pose, P(m, m->pt.pg_in_w), P(m, m->pt.pg_in_b), BF, s->Cp, sH, sW, Cg, 3, 1, 1,
              m->g.col);
    op_silu(a->pg_act[0], a->pg_pre[0], BF * Cg * hw0);
    for (int l = 1; l <= Gn; l++) {
        int hi = side(sH, l - 1), wi = side(sW, l - 1);
        size_t out_sz = (size_t)Cg * side(sH, l) * side(sW, l);
        int wi_idx = m->pt.pg_down_w0 + 2 * (l - 1);
        op_conv2d(a->pg_pre[l], a->pg_act[l - 1], P(m, wi_idx), P(m, wi_idx + 1), BF, Cg, hi, wi, Cg, 3, 2, 1,
                  m->g.col);
        op_silu(a->pg_act[l], a->pg_pre[l], BF * out_sz);
    }
    int K = Cg * s->p * s->p;
    op_patchify(a->pg_tok, a->pg_act[Gn], BF, Cg, s->H, s->W, s->p);
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
    op_copy_unless(g->dpg_out, g->dzr, in->drop_pose, B, FSD);
    op_zero(g->dpg_patch, N * D);
    op_linear_backward(g->dpg_patch, G(m, m->pt.pg_zero_w), G(m, m->pt.pg_zero_b), g->dpg_out, a->pg_patch,
                       P(m, m->pt.pg_zero_w), (int)N, D, D);
    op_zero(g->dpg_tok, N * K);
    op_linear_backward(g->dpg_tok, G(m, m->pt.pg_patch_w), G(m, m->pt.pg_patch_b), g->dpg_patch, a->pg_tok,
                       P(m, m->pt.pg_patch_w), (int)N, K, D);
    size_t map = (size_t)Cg * s->H * s->W;
    op_zero(g->dpg_a, BF * map);
    op_patchify_backward(g->dpg_a, g->dpg_tok, BF, Cg, s->H, s->W, s->p);
    /* dpg_a holds d/d act of level l; dpg_b gets d/d pre; conv backward refills dpg_a one level up */
    for (int l = Gn; l >= 0; l--) {
        size_t out_sz = (size_t)Cg * side(sH, l) * side(sW, l);
        op_zero(g->dpg_b, BF * out_sz);
        op_silu_backward(g->dpg_b, g->dpg_a, a->pg_pre[l], BF * out_sz);
        if (l == 0) {
            op_conv2d_backward(NULL, G(m, m->pt.pg_in_w), G(m, m->pt.pg_in_b), g->dpg_b, in->pose, P(m, m->pt.pg_in_w),
                               BF, s->Cp, sH, sW, Cg, 3, 1, 1, m->g.col);
        } else {
            int hi = side(sH, l - 1), wi = side(sW, l - 1), idx = m->pt.pg_down_w0 + 2 * (l - 1);
            size_t in_sz = (size_t)Cg * hi * wi;
            op_zero(g->dpg_a, BF * in_sz);
            op_conv2d_backward(g->dpg_a, G(m, idx), G(m, idx + 1), g->dpg_b, a->pg_act[l - 1], P(m, idx), BF, Cg, hi,
                               wi, Cg, 3, 2, 1, m->g.col);
        }
    }
}

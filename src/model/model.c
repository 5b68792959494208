/* The EP-VDiT forward and backward pass: conditioning, embeddings, pose
 * guider, L blocks in the reference and video passes, final layer. */
#include "model/model.h"
#include "core/die.h"
#include "model/block.h"
#include "ops/embed.h"
#include "ops/ops.h"
#include "model/pose_guider.h"
#include <string.h>

static const float *P(const Model *m, int idx) { return m->w + m->pt.info[idx].offset; }
static float *G(const Model *m, int idx) { return model_cgrad(m, idx); }
static const float *Pb(const Model *m, int b, int k) { return m->w + param_block(&m->pt, b, k)->offset; }
static float *Gb(const Model *m, int b, int k) { return model_cgrad(m, m->pt.blk0 + b * BP_COUNT + k); }
static int skipped(const Model *m, int b) { return m->skip && m->skip[b]; }
static void grads_final(const Model *m, int first) {
    if (m->grads_final) m->grads_final(m->grads_final_ctx, first);
}

int model_last_active(const Model *m) {
    for (int b = m->shape.L - 1; b >= 0; b--)
        if (!skipped(m, b)) return b;
    return -1;
}

static void forward(Model *m, const Batch *in, float *eps_hat) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), C = s->C, H = s->H, Wd = s->W, p = s->p;
    int K = C * p * p, BF = B * F, PPC = p * p * C;
    size_t N = (size_t)BF * S, Nr = (size_t)B * S;

    /* conditioning: rows 0..B-1 are c(t), rows B..2B-1 are c(0) for the reference pass */
    op_timestep_embed(a->temb, in->t, B);
    op_linear(a->th1, a->temb, P(m, m->pt.t_w1), P(m, m->pt.t_b1), 2 * B, 256, D);
    op_silu(a->ta1, a->th1, (size_t)2 * B * D);
    op_linear(a->c, a->ta1, P(m, m->pt.t_w2), P(m, m->pt.t_b2), 2 * B, D, D);
    op_silu(a->sc, a->c, (size_t)2 * B * D);

    /* patch embedding of the video frames and the reference, one Linear for both */
    op_patchify(a->xp, in->x, BF, C, H, Wd, p);
    op_patchify(a->xp + N * K, in->ref, B, C, H, Wd, p);
    op_linear(a->zr, a->xp, P(m, m->pt.x_w), P(m, m->pt.x_b), (int)(N + Nr), K, D);
    /* frame embedding never in image mode nor in the reference pass; with
     * frame_embed = temporal the blocks add it to their temporal attention's input */
    op_add_pos(a->zr, m->pos, m->frame_emb, N + Nr, F > 1 && !shape_frame_embed_temporal(&m->shape) ? N : 0, S, F, D);

    pose_guider_forward(m, in);
    op_add_unless(a->zr, a->pg_out, in->drop_pose, B, (size_t)F * S * D);

    int last = model_last_active(m);
    for (int b = 0; b < s->L; b++) {
        if (skipped(m, b)) continue;
        op_linear(a->blk[b].mod, a->sc, Pb(m, b, BP_ADA_W), Pb(m, b, BP_ADA_B), 2 * B, D, 9 * D);
        ref_block_forward(m, b, b < last);
        video_block_forward(m, b, in);
    }

    op_linear(a->fmod, a->sc, P(m, m->pt.f_ada_w), P(m, m->pt.f_ada_b), B, D, 2 * D);
    op_ln_modulate(a->uf, a->xhatf, a->mean, a->rstdf, a->zr, a->fmod, a->fmod + D, 2 * D, B, F * S, D);
    op_linear(a->fout, a->uf, P(m, m->pt.f_lin_w), P(m, m->pt.f_lin_b), (int)N, D, PPC);
    op_unpatchify_final(eps_hat, a->fout, BF, C, H, Wd, p);
}

/* block b's ada: dsc += its input gradient, and its weight gradient from
 * dmod; when only the temporal rows train (TRAIN_TEMPORAL_ROWS) the other six
 * chunks of dmod are zeroed first, after the input gradient has used them. */
static void ada_backward(Model *m, int b, float *dsc) {
    const Grads *g = &m->g;
    int B = m->B, D = m->shape.D;
    float *dw = Gb(m, b, BP_ADA_W), *db = Gb(m, b, BP_ADA_B);
    if (!dw || m->trainable[m->pt.blk0 + b * BP_COUNT + BP_ADA_W] != TRAIN_TEMPORAL_ROWS) {
        op_linear_backward(dsc, dw, db, g->dmod, m->a.sc, Pb(m, b, BP_ADA_W), 2 * B, D, 9 * D);
        return;
    }
    if (dsc) op_linear_backward(dsc, NULL, NULL, g->dmod, m->a.sc, Pb(m, b, BP_ADA_W), 2 * B, D, 9 * D);
    for (int r = 0; r < 2 * B; r++) {
        op_zero(g->dmod + (size_t)r * 9 * D, (size_t)3 * D);         /* shift_s, scale_s, gate_s */
        op_zero(g->dmod + (size_t)r * 9 * D + 6 * D, (size_t)3 * D); /* shift_m, scale_m, gate_m */
    }
    op_linear_backward(NULL, dw, db, g->dmod, m->a.sc, Pb(m, b, BP_ADA_W), 2 * B, D, 9 * D);
}

static void backward(Model *m, const Batch *in, const float *deps) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    Grads *g = &m->g;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), C = s->C, H = s->H, Wd = s->W, p = s->p;
    int K = C * p * p, BF = B * F, PPC = p * p * C;
    size_t N = (size_t)BF * S, Nr = (size_t)B * S;

    op_zero(g->dzr, (N + Nr) * D);
    op_zero(g->dsc, (size_t)2 * B * D);

    /* final layer; its modulation gradient uses dmod's first 2BD floats */
    float *dsc = m->input_grads ? g->dsc : NULL; /* c only matters when the timestep MLP trains */
    int reach = m->first_bwd < s->L;             /* does backward enter any block? */
    op_zero(g->dfout, N * PPC);
    op_unpatchify_final_backward(g->dfout, deps, BF, C, H, Wd, p);
    op_zero(g->du, N * D);
    op_linear_backward(reach || G(m, m->pt.f_ada_w) ? g->du : NULL, G(m, m->pt.f_lin_w), G(m, m->pt.f_lin_b),
                       g->dfout, a->uf, P(m, m->pt.f_lin_w), (int)N, D, PPC);
    op_zero(g->dxhat, N * D);
    op_zero(g->dmod, (size_t)B * 2 * D);
    op_modulate_backward(g->dxhat, g->dmod, g->dmod + D, g->du, a->xhatf, a->fmod + D, 2 * D, B, F * S, D);
    if (reach) op_layernorm_backward(g->dzr, g->dxhat, a->xhatf, a->rstdf, (int)N, D);
    op_linear_backward(dsc, G(m, m->pt.f_ada_w), G(m, m->pt.f_ada_b), g->dmod, a->sc, P(m, m->pt.f_ada_w), B, D,
                       2 * D);
    grads_final(m, m->pt.f_ada_w); /* the final layer (the table's last tensors) */

    /* blocks, last to first, down to the earliest one that trains (frozen ones
     * pass input gradients only); video block b feeds the bank gradient that
     * ref block b consumes */
    int last = model_last_active(m);
    for (int b = s->L - 1; b >= m->first_bwd; b--) {
        if (skipped(m, b)) continue;
        op_zero(g->dmod, (size_t)2 * B * 9 * D);
        op_zero(g->dqkv_r, Nr * 3 * D);
        if (model_recomputes(m, b)) video_block_recompute(m, b, in);
        video_block_backward(m, b, in);
        if (model_recomputes(m, b)) ref_block_recompute(m, b, b < last);
        ref_block_backward(m, b, b < last);
        ada_backward(m, b, dsc);
        grads_final(m, m->pt.blk0 + b * BP_COUNT); /* nothing after this iteration adds to block b's gradients */
    }
    if (!m->input_grads) {
        grads_final(m, 0);
        return;
    }

    pose_guider_backward(m, in);
    op_linear_backward(NULL, G(m, m->pt.x_w), G(m, m->pt.x_b), g->dzr, a->xp, P(m, m->pt.x_w), (int)(N + Nr), K, D);

    /* timestep MLP (both rows sets: c(t) and c(0) share it) */
    size_t n2 = (size_t)2 * B * D;
    op_zero(g->dc, n2);
    op_silu_backward(g->dc, g->dsc, a->c, n2);
    op_zero(g->dt1, n2);
    op_linear_backward(g->dt1, G(m, m->pt.t_w2), G(m, m->pt.t_b2), g->dc, a->ta1, P(m, m->pt.t_w2), 2 * B, D, D);
    op_zero(g->dc, n2);
    op_silu_backward(g->dc, g->dt1, a->th1, n2);
    op_linear_backward(NULL, G(m, m->pt.t_w1), G(m, m->pt.t_b1), g->dc, a->temb, P(m, m->pt.t_w1), 2 * B, 256, D);
    grads_final(m, 0);
}

/* ---- the host-facing pass: on CUDA, params and inputs go up, outputs and gradients come back ---- */

static Batch stage_batch(Model *m, const Batch *in) {
    if (ops_host_memory()) return *in;
    const ModelShape *s = &m->shape;
    size_t B = m->B, img = (size_t)s->C * s->H * s->W, pose = (size_t)s->F * s->Cp * (s->s * s->H) * (s->s * s->W);
    ops_upload(m->stage.x, in->x, B * s->F * img * sizeof(float));
    ops_upload(m->stage.ref, in->ref, B * img * sizeof(float));
    ops_upload(m->stage.pose, in->pose, B * pose * sizeof(float));
    ops_upload(m->stage.t, in->t, B * sizeof(int));
    ops_upload(m->stage.drop_ref, in->drop_ref, B);
    ops_upload(m->stage.drop_pose, in->drop_pose, B);
    return (Batch){m->stage.x, m->stage.t, m->stage.ref, m->stage.pose, m->stage.drop_ref, m->stage.drop_pose};
}

static size_t out_floats(const Model *m) {
    const ModelShape *s = &m->shape;
    return (size_t)m->B * s->F * s->C * s->H * s->W;
}

void model_forward(Model *m, const Batch *in, float *eps_hat) {
    if (ops_host_memory()) {
        forward(m, in, eps_hat);
        return;
    }
    /* a plain model uploads before every pass (its user may have changed params);
     * forward-only and resident models only when params changed on the host */
    if (!m->w_current || !(m->forward_only || m->resident))
        ops_upload(m->w, m->params, m->pt.total * sizeof(float));
    m->w_current = 1;
    Batch dev = stage_batch(m, in);
    forward(m, &dev, m->stage.eps);
    ops_download(eps_hat, m->stage.eps, out_floats(m) * sizeof(float));
}

void model_backward(Model *m, const Batch *in, const float *deps) {
    if (m->forward_only) ep_die("internal: model_backward on a forward-only model");
    if (ops_host_memory()) {
        backward(m, in, deps);
        return;
    }
    Batch dev = stage_batch(m, in);
    ops_upload(m->stage.deps, deps, out_floats(m) * sizeof(float));
    /* backward adds to the gradients: start from the host's unless they are known to be zero */
    if (m->cgrads_zero) op_zero(m->cgrads, m->grad_size);
    else ops_upload(m->cgrads, m->grads, m->grad_size * sizeof(float));
    backward(m, &dev, m->stage.deps);
    if (!m->resident) ops_download(m->grads, m->cgrads, m->grad_size * sizeof(float));
    m->cgrads_zero = 0;
}

void model_params_to_host(Model *m) {
    if (ops_host_memory() || m->host_current) return;
    ops_download(m->params, m->w, m->pt.total * sizeof(float));
    m->host_current = 1;
}

void model_params_written(Model *m) {
    m->w_current = 0;
    m->host_current = 1;
}

void model_params_changed_on_device(Model *m) {
    if (!ops_host_memory()) m->host_current = 0;
}

void model_grads_to_host(Model *m) {
    if (!ops_host_memory()) ops_download(m->grads, m->cgrads, m->grad_size * sizeof(float));
}

void model_zero_grads(Model *m) {
    /* On a GPU the next backward zeroes the device copy and overwrites the
     * host one whole: the host memset (3.7 GB at the paper shape) is skipped. */
    if (ops_host_memory()) memset(m->grads, 0, m->grad_size * sizeof(float));
    m->cgrads_zero = 1;
}

double mse_loss(const float *eps_hat, const float *eps, float *deps, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)eps_hat[i] - eps[i];
        sum += e * e;
        if (deps) deps[i] = (float)(2.0 * e / (double)n);
    }
    return sum / (double)n;
}

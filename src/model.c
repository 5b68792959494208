/* The EP-VDiT forward and backward pass: conditioning, embeddings, pose
 * guider, L blocks in the reference and video passes, final layer. */
#include "model.h"
#include "block.h"
#include "embed.h"
#include "ops.h"
#include "pose_guider.h"
#include <string.h>

static const float *P(const Model *m, int idx) { return m->params + m->pt.info[idx].offset; }
static float *G(const Model *m, int idx) { return model_grad(m, idx); }
static const float *Pb(const Model *m, int b, int k) { return m->params + param_block(&m->pt, b, k)->offset; }
static float *Gb(const Model *m, int b, int k) { return model_grad(m, m->pt.blk0 + b * BP_COUNT + k); }
static int skipped(const Model *m, int b) { return m->skip && m->skip[b]; }

int model_last_active(const Model *m) {
    for (int b = m->shape.L - 1; b >= 0; b--)
        if (!skipped(m, b)) return b;
    return -1;
}

void model_forward(Model *m, const Batch *in, float *eps_hat) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), C = s->C, H = s->H, Wd = s->W, p = s->p;
    int K = C * p * p, BF = B * F, PPC = p * p * C;
    size_t N = (size_t)BF * S, Nr = (size_t)B * S, img = (size_t)C * H * Wd;

    /* conditioning: rows 0..B-1 are c(t), rows B..2B-1 are c(0) for the reference pass */
    for (int i = 0; i < B; i++) {
        embed_timestep(a->temb + (size_t)i * 256, in->t[i]);
        embed_timestep(a->temb + (size_t)(B + i) * 256, 0);
    }
    op_linear(a->th1, a->temb, P(m, m->pt.t_w1), P(m, m->pt.t_b1), 2 * B, 256, D);
    op_silu(a->ta1, a->th1, (size_t)2 * B * D);
    op_linear(a->c, a->ta1, P(m, m->pt.t_w2), P(m, m->pt.t_b2), 2 * B, D, D);
    op_silu(a->sc, a->c, (size_t)2 * B * D);

    /* patch embedding of the video frames and the reference, one Linear for both */
    for (int f = 0; f < BF; f++) op_patchify(a->xp + (size_t)f * S * K, in->x + f * img, C, H, Wd, p);
    for (int i = 0; i < B; i++) op_patchify(a->xp + (N + (size_t)i * S) * K, in->ref + i * img, C, H, Wd, p);
    op_linear(a->zr, a->xp, P(m, m->pt.x_w), P(m, m->pt.x_b), (int)(N + Nr), K, D);
    for (size_t r = 0; r < N + Nr; r++) {
        float *row = a->zr + r * D;
        const float *pos = m->pos + (r % S) * D;
        const float *fe = m->frame_emb + ((r / S) % F) * D;
        int add_frame = F > 1 && r < N; /* never in image mode nor in the reference pass */
        for (int j = 0; j < D; j++) row[j] += pos[j] + (add_frame ? fe[j] : 0.0f);
    }

    pose_guider_forward(m, in);
    for (int i = 0; i < B; i++) {
        if (in->drop_pose[i]) continue;
        size_t o = (size_t)i * F * S * D;
        for (size_t j = 0; j < (size_t)F * S * D; j++) a->zr[o + j] += a->pg_out[o + j];
    }

    int last = model_last_active(m);
    for (int b = 0; b < s->L; b++) {
        if (skipped(m, b)) continue;
        op_linear(a->blk[b].mod, a->sc, Pb(m, b, BP_ADA_W), Pb(m, b, BP_ADA_B), 2 * B, D, 9 * D);
        ref_block_forward(m, b, b < last);
        video_block_forward(m, b, in);
    }

    op_linear(a->fmod, a->sc, P(m, m->pt.f_ada_w), P(m, m->pt.f_ada_b), B, D, 2 * D);
    op_layernorm(a->xhatf, a->mean, a->rstdf, a->zr, (int)N, D);
    op_modulate(a->uf, a->xhatf, a->fmod, a->fmod + D, 2 * D, B, F * S, D);
    op_linear(a->fout, a->uf, P(m, m->pt.f_lin_w), P(m, m->pt.f_lin_b), (int)N, D, PPC);
    for (int f = 0; f < BF; f++) op_unpatchify_final(eps_hat + f * img, a->fout + (size_t)f * S * PPC, C, H, Wd, p);
}

void model_backward(Model *m, const Batch *in, const float *deps) {
    const ModelShape *s = &m->shape;
    Acts *a = &m->a;
    Grads *g = &m->g;
    int B = m->B, F = s->F, D = s->D, S = shape_S(s), C = s->C, H = s->H, Wd = s->W, p = s->p;
    int K = C * p * p, BF = B * F, PPC = p * p * C;
    size_t N = (size_t)BF * S, Nr = (size_t)B * S, img = (size_t)C * H * Wd;

    memset(g->dzr, 0, (N + Nr) * D * sizeof(float));
    memset(g->dsc, 0, (size_t)2 * B * D * sizeof(float));

    /* final layer; its modulation gradient uses dmod's first 2BD floats */
    float *dsc = m->input_grads ? g->dsc : NULL; /* c only matters when the timestep MLP trains */
    int reach = m->first_bwd < s->L;             /* does backward enter any block? */
    memset(g->dfout, 0, N * PPC * sizeof(float));
    for (int f = 0; f < BF; f++) op_unpatchify_final_backward(g->dfout + (size_t)f * S * PPC, deps + f * img, C, H, Wd, p);
    memset(g->du, 0, N * D * sizeof(float));
    op_linear_backward(reach || G(m, m->pt.f_ada_w) ? g->du : NULL, G(m, m->pt.f_lin_w), G(m, m->pt.f_lin_b),
                       g->dfout, a->uf, P(m, m->pt.f_lin_w), (int)N, D, PPC);
    memset(g->dxhat, 0, N * D * sizeof(float));
    memset(g->dmod, 0, (size_t)B * 2 * D * sizeof(float));
    op_modulate_backward(g->dxhat, g->dmod, g->dmod + D, g->du, a->xhatf, a->fmod + D, 2 * D, B, F * S, D);
    if (reach) op_layernorm_backward(g->dzr, g->dxhat, a->xhatf, a->rstdf, (int)N, D);
    op_linear_backward(dsc, G(m, m->pt.f_ada_w), G(m, m->pt.f_ada_b), g->dmod, a->sc, P(m, m->pt.f_ada_w), B, D,
                       2 * D);

    /* blocks, last to first, down to the earliest one that trains (frozen ones
     * pass input gradients only); video block b feeds the bank gradient that
     * ref block b consumes */
    int last = model_last_active(m);
    for (int b = s->L - 1; b >= m->first_bwd; b--) {
        if (skipped(m, b)) continue;
        memset(g->dmod, 0, (size_t)2 * B * 9 * D * sizeof(float));
        memset(g->dqkv_r, 0, Nr * 3 * D * sizeof(float));
        video_block_backward(m, b, in);
        ref_block_backward(m, b, b < last);
        op_linear_backward(dsc, Gb(m, b, BP_ADA_W), Gb(m, b, BP_ADA_B), g->dmod, a->sc, Pb(m, b, BP_ADA_W), 2 * B,
                           D, 9 * D);
    }
    if (!m->input_grads) return;

    pose_guider_backward(m, in);
    op_linear_backward(NULL, G(m, m->pt.x_w), G(m, m->pt.x_b), g->dzr, a->xp, P(m, m->pt.x_w), (int)(N + Nr), K, D);

    /* timestep MLP (both rows sets: c(t) and c(0) share it) */
    size_t n2 = (size_t)2 * B * D;
    memset(g->dc, 0, n2 * sizeof(float));
    op_silu_backward(g->dc, g->dsc, a->c, n2);
    memset(g->dt1, 0, n2 * sizeof(float));
    op_linear_backward(g->dt1, G(m, m->pt.t_w2), G(m, m->pt.t_b2), g->dc, a->ta1, P(m, m->pt.t_w2), 2 * B, D, D);
    memset(g->dc, 0, n2 * sizeof(float));
    op_silu_backward(g->dc, g->dt1, a->th1, n2);
    op_linear_backward(NULL, G(m, m->pt.t_w1), G(m, m->pt.t_b1), g->dc, a->temb, P(m, m->pt.t_w1), 2 * B, 256, D);
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

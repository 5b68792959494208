/* DiT -> EP-VDiT (dit_import.h, docs/weights.md). DiT's block is EP-VDiT's
 * block without the temporal branch and the reference keys: its six adaLN
 * chunks (shift, scale, gate for attention, then for the MLP) become chunks
 * 0-2 and 6-8 of the nine, and the temporal chunks 3-5 stay zero, so
 * gate_t = 0 and the temporal branch adds nothing until it trains. */
#include "io/dit_import.h"
#include "core/die.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "ops/embed.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIT_INIT_STREAM 1 /* the stream `train` initialises from (train/trainer.h STREAM_INIT) */

typedef struct {
    StFile sf;
    uint8_t *used; /* [sf.n] */
} Dit;

/* The tensor called name, checked to have the given shape, marked used. */
static const StTensor *want(Dit *d, const char *name, int ndim, ...) {
    int64_t sh[4];
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++) sh[i] = va_arg(ap, int);
    va_end(ap);
    const StTensor *t = st_find(&d->sf, name);
    if (!t) ep_die("'%s' lacks tensor '%s' (not a DiT checkpoint, or fewer blocks than the deck's L?)", d->sf.path, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == sh[i];
    if (!same) {
        char a[96] = "", b[96] = "";
        for (int i = 0; i < t->ndim; i++) snprintf(a + strlen(a), sizeof a - strlen(a), i ? ",%lld" : "%lld", (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++) snprintf(b + strlen(b), sizeof b - strlen(b), i ? ",%lld" : "%lld", (long long)sh[i]);
        ep_die("'%s': tensor '%s' is [%s] but the deck's model needs [%s] (check model.C, p, D, L, mlp_ratio, H, W)",
               d->sf.path, name, a, b);
    }
    d->used[t - d->sf.t] = 1;
    return t;
}

/* Reads DiT tensor `name` of the given shape into dst. */
static void take(Dit *d, float *dst, const char *name, int ndim, int a, int b, int c, int e) {
    st_read_f32(&d->sf, want(d, name, ndim, a, b, c, e), dst);
}

static float *param(const ParamTable *pt, float *w, const char *name) {
    int i = param_find(pt, name);
    if (i < 0) ep_die("internal: no parameter '%s'", name);
    return w + pt->info[i].offset;
}

/* DiT's six adaLN chunks into chunks 0-2 and 6-8 of EP-VDiT's nine (rows of `cols` values). */
static void take_ada(Dit *d, float *dst, const char *name, int D, int cols) {
    float *tmp = ep_malloc((size_t)6 * D * cols * sizeof(float), "DiT adaLN");
    if (cols > 1) take(d, tmp, name, 2, 6 * D, cols, 0, 0);
    else take(d, tmp, name, 1, 6 * D, 0, 0, 0);
    size_t half = (size_t)3 * D * cols;
    memcpy(dst, tmp, half * sizeof(float));                         /* shift_s, scale_s, gate_s */
    memcpy(dst + 2 * half, tmp + half, half * sizeof(float));       /* shift_m, scale_m, gate_m */
    free(tmp);
}

/* DiT's final Linear gives Co = C or 2C (learned sigma) values per patch
 * position k, channel fastest: row k*Co + c. EP-VDiT keeps the noise half,
 * c < C, as its rows k*C + c. */
static int take_final(Dit *d, float *wdst, float *bdst, int pp, int C, int D) {
    const StTensor *t = st_find(&d->sf, "final_layer.linear.weight");
    int Co = t && t->ndim == 2 && t->shape[0] == (int64_t)2 * pp * C ? 2 * C : C;
    float *w = ep_malloc((size_t)pp * Co * D * sizeof(float), "DiT final"), *b = ep_malloc((size_t)pp * Co * sizeof(float), "DiT final");
    take(d, w, "final_layer.linear.weight", 2, pp * Co, D, 0, 0);
    take(d, b, "final_layer.linear.bias", 1, pp * Co, 0, 0, 0);
    for (int k = 0; k < pp; k++)
        for (int c = 0; c < C; c++) {
            memcpy(wdst + ((size_t)k * C + c) * D, w + ((size_t)k * Co + c) * D, (size_t)D * sizeof(float));
            bdst[k * C + c] = b[k * Co + c];
        }
    free(w), free(b);
    return Co == 2 * C;
}

/* DiT stores its fixed position table; it must be the one this model adds (same grid, same convention). */
static void check_pos(Dit *d, const ModelShape *m) {
    if (!st_find(&d->sf, "pos_embed")) return;
    int S = (m->H / m->p) * (m->W / m->p), D = m->D;
    float *have = ep_malloc((size_t)S * D * sizeof(float), "DiT pos_embed"), *mine = ep_malloc((size_t)S * D * sizeof(float), "pos");
    take(d, have, "pos_embed", 3, 1, S, D, 0);
    embed_pos2d(mine, D, m->H / m->p, m->W / m->p);
    for (size_t i = 0; i < (size_t)S * D; i++)
        if (fabsf(have[i] - mine[i]) > 1e-5f)
            ep_die("'%s': tensor 'pos_embed' differs from the model's fixed 2-D sin-cos table at element %zu "
                   "(%g vs %g): a different grid (model.H, W) or convention", d->sf.path, i, have[i], mine[i]);
    free(have), free(mine);
}

void dit_import(const char *path, const ParamTable *pt, const ModelShape *m, int label, uint64_t seed, float *w,
                DitImportInfo *info) {
    Rng rng;
    rng_seed_stream(&rng, seed, DIT_INIT_STREAM);
    param_init(pt, m, w, &rng); /* what DiT lacks: pose guider, temporal attention; ada and pose_guider.zero stay 0 */

    Dit d;
    st_open(&d.sf, path);
    d.used = ep_calloc((size_t)d.sf.n + 1, 1, "DiT tensors");
    int D = m->D, C = m->C, p = m->p, Dm = shape_Dm(m);
    char src[96], dst[96];

    take(&d, param(pt, w, "x_embed.proj.weight"), "x_embedder.proj.weight", 4, D, C, p, p);
    take(&d, param(pt, w, "x_embed.proj.bias"), "x_embedder.proj.bias", 1, D, 0, 0, 0);
    take(&d, param(pt, w, "t_embed.mlp.0.weight"), "t_embedder.mlp.0.weight", 2, D, 256, 0, 0);
    take(&d, param(pt, w, "t_embed.mlp.0.bias"), "t_embedder.mlp.0.bias", 1, D, 0, 0, 0);
    take(&d, param(pt, w, "t_embed.mlp.2.weight"), "t_embedder.mlp.2.weight", 2, D, D, 0, 0);
    take(&d, param(pt, w, "t_embed.mlp.2.bias"), "t_embedder.mlp.2.bias", 1, D, 0, 0, 0);

    /* DiT conditions on c = t_emb + y_emb[label]; y_emb[label] is a constant vector, so it is the last bias's */
    const StTensor *yt = st_find(&d.sf, "y_embedder.embedding_table.weight");
    if (!yt || yt->ndim != 2) ep_die("'%s' lacks tensor 'y_embedder.embedding_table.weight' [labels, D]", path);
    int rows = (int)yt->shape[0];
    int row = label == DIT_NULL_LABEL ? rows - 1 : label;
    if (rows < 1 || row < 0 || row >= rows)
        ep_die("'%s': label %d is outside the %d rows of 'y_embedder.embedding_table.weight'", path, label, rows);
    float *table = ep_malloc((size_t)rows * D * sizeof(float), "DiT label table");
    take(&d, table, "y_embedder.embedding_table.weight", 2, rows, D, 0, 0);
    float *b2 = param(pt, w, "t_embed.mlp.2.bias");
    for (int i = 0; i < D; i++) b2[i] += table[(size_t)row * D + i];
    free(table);

    for (int b = 0; b < m->L; b++) {
        static const struct { const char *dit, *ep; int rows, cols; } LIN[] = {
            {"attn.qkv", "attn_s.qkv", 3, 1}, {"attn.proj", "attn_s.proj", 1, 1},
            {"mlp.fc1", "mlp.fc1", -1, 1}, {"mlp.fc2", "mlp.fc2", 1, -1},
        };
        for (size_t k = 0; k < sizeof LIN / sizeof *LIN; k++) {
            int r = LIN[k].rows < 0 ? Dm : LIN[k].rows * D, c = LIN[k].cols < 0 ? Dm : D;
            snprintf(src, sizeof src, "blocks.%d.%s.weight", b, LIN[k].dit);
            snprintf(dst, sizeof dst, "blocks.%d.%s.weight", b, LIN[k].ep);
            take(&d, param(pt, w, dst), src, 2, r, c, 0, 0);
            snprintf(src, sizeof src, "blocks.%d.%s.bias", b, LIN[k].dit);
            snprintf(dst, sizeof dst, "blocks.%d.%s.bias", b, LIN[k].ep);
            take(&d, param(pt, w, dst), src, 1, r, 0, 0, 0);
        }
        snprintf(src, sizeof src, "blocks.%d.adaLN_modulation.1.weight", b);
        snprintf(dst, sizeof dst, "blocks.%d.ada.weight", b);
        take_ada(&d, param(pt, w, dst), src, D, D);
        snprintf(src, sizeof src, "blocks.%d.adaLN_modulation.1.bias", b);
        snprintf(dst, sizeof dst, "blocks.%d.ada.bias", b);
        take_ada(&d, param(pt, w, dst), src, D, 1);
    }
    take(&d, param(pt, w, "final.ada.weight"), "final_layer.adaLN_modulation.1.weight", 2, 2 * D, D, 0, 0);
    take(&d, param(pt, w, "final.ada.bias"), "final_layer.adaLN_modulation.1.bias", 1, 2 * D, 0, 0, 0);
    int learn_sigma = take_final(&d, param(pt, w, "final.linear.weight"), param(pt, w, "final.linear.bias"), p * p, C, D);
    check_pos(&d, m);

    for (int i = 0; i < d.sf.n; i++)
        if (!d.used[i])
            ep_die("'%s' has tensor '%s', which the import does not map (more blocks than the deck's L = %d, or not DiT)",
                   path, d.sf.t[i].name, m->L);
    *info = (DitImportInfo){.blocks = m->L, .learn_sigma = learn_sigma, .label = row, .n_labels = rows};
    free(d.used);
    st_close(&d.sf);
}

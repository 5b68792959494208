/* The SD VAE (vae.h), one image at a time through plain per-layer forwards.
 * The architecture is diffusers' AutoencoderKL with its SD defaults:
 *   encoder: conv_in; per level `layers` ResnetBlock2D then (all but the last
 *            level) a stride-2 3x3 conv after one zero row and column at the
 *            bottom and right; mid block = resnet, single-head self-attention,
 *            resnet; GroupNorm + SiLU; conv_out to 2*latent channels (mean,
 *            log-variance); quant_conv 1x1. Only the mean is used.
 *   decoder: post_quant_conv 1x1; conv_in; mid block; per level (channels
 *            reversed) `layers`+1 resnets then (all but the last) nearest 2x
 *            upsampling and a 3x3 conv; GroupNorm + SiLU; conv_out.
 *   ResnetBlock2D(x) = shortcut(x) + conv2(silu(gn2(conv1(silu(gn1(x)))))),
 *   shortcut a 1x1 conv when the channels change; GroupNorm eps 1e-6.
 *   Attention(x) = x + to_out(softmax(q k^T / sqrt(C)) v) over the HW pixels
 *   as tokens, q, k, v = to_q, to_k, to_v of GroupNorm(x).
 * Convolutions and norms are ops/image_cpu.h; the attention's products are
 * the CPU backend's (cpu_linear, cpu_attention_one), called directly because
 * the whole VAE runs on host memory whatever backend the model uses. */
#include "model/vae.h"
#include "core/die.h"
#include "ops/image_cpu.h"
#include "ops/ops_cpu.h"
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GN_EPS 1e-6f

/* ---- building: every tensor under its diffusers name ---- */

static float *param(Vae *v, float *p, int ndim, const int *shape, const char *fmt, ...) {
    if (v->nparam == VAE_MAX_PARAMS) ep_die("vae: more than %d tensors", VAE_MAX_PARAMS);
    VaeParam *t = &v->param[v->nparam++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], t->numel *= (size_t)shape[i];
    t->p = p ? p : ep_calloc(t->numel, sizeof(float), "VAE weights");
    if (!p) v->total += t->numel;
    return t->p;
}

static void conv_build(Vae *v, VaeConv *c, const char *pre, int cin, int cout, int k) {
    *c = (VaeConv){.cin = cin, .cout = cout, .k = k};
    c->w = param(v, NULL, 4, (int[]){cout, cin, k, k}, "%s.weight", pre);
    c->b = param(v, NULL, 1, (int[]){cout}, "%s.bias", pre);
}

static void norm_build(Vae *v, VaeNorm *n, const char *pre, int c) {
    n->c = c;
    n->g = param(v, NULL, 1, (int[]){c}, "%s.weight", pre);
    n->b = param(v, NULL, 1, (int[]){c}, "%s.bias", pre);
}

static void resnet_build(Vae *v, VaeResnet *r, const char *pre, int cin, int cout) {
    char s[96];
    memset(r, 0, sizeof *r);
    snprintf(s, sizeof s, "%s.norm1", pre), norm_build(v, &r->n1, s, cin);
    snprintf(s, sizeof s, "%s.conv1", pre), conv_build(v, &r->c1, s, cin, cout, 3);
    snprintf(s, sizeof s, "%s.norm2", pre), norm_build(v, &r->n2, s, cout);
    snprintf(s, sizeof s, "%s.conv2", pre), conv_build(v, &r->c2, s, cout, cout, 3);
    if (cin != cout) snprintf(s, sizeof s, "%s.conv_shortcut", pre), conv_build(v, &r->skip, s, cin, cout, 1);
}

static void attn_build(Vae *v, VaeAttn *a, const char *pre, int C) {
    char s[128];
    a->c = C;
    snprintf(s, sizeof s, "%s.group_norm", pre), norm_build(v, &a->n, s, C);
    /* q, k, v weights land in one [3C, C] matrix so one product makes fused qkv rows */
    a->wqkv = ep_calloc((size_t)3 * C * C, sizeof(float), "VAE weights");
    a->bqkv = ep_calloc((size_t)3 * C, sizeof(float), "VAE weights");
    v->total += (size_t)3 * C * C + 3 * C;
    const char *qkv[3] = {"to_q", "to_k", "to_v"};
    for (int i = 0; i < 3; i++) {
        param(v, a->wqkv + (size_t)i * C * C, 2, (int[]){C, C}, "%s.%s.weight", pre, qkv[i]);
        param(v, a->bqkv + (size_t)i * C, 1, (int[]){C}, "%s.%s.bias", pre, qkv[i]);
    }
    a->wo = param(v, NULL, 2, (int[]){C, C}, "%s.to_out.0.weight", pre);
    a->bo = param(v, NULL, 1, (int[]){C}, "%s.to_out.0.bias", pre);
}

static void mid_build(Vae *v, VaeResnet *res, VaeAttn *at, const char *pre, int C, int with_attn) {
    char s[96];
    if (with_attn) snprintf(s, sizeof s, "%s.attentions.0", pre), attn_build(v, at, s, C);
    for (int i = 0; i < 2; i++) snprintf(s, sizeof s, "%s.resnets.%d", pre, i), resnet_build(v, &res[i], s, C, C);
}

const char *vae_config_check(const VaeConfig *c) {
    static char why[160];
    if (c->nlev < 1 || c->nlev > VAE_MAX_LEVELS) return "the number of levels is not 1..8";
    if (c->layers < 1 || c->layers > VAE_MAX_LAYERS - 1) return "layers_per_block is not 1..7";
    if (c->in_ch < 1 || c->out_ch < 1 || c->latent < 1) return "a channel count is not positive";
    if (c->groups < 1) return "norm_num_groups is not positive";
    for (int i = 0; i < c->nlev; i++)
        if (c->ch[i] < 1 || c->ch[i] % c->groups) {
            snprintf(why, sizeof why, "block_out_channels[%d] = %d is not a positive multiple of norm_num_groups %d",
                     i, c->ch[i], c->groups);
            return why;
        }
    if (!(c->scale > 0) || !isfinite(c->scale) || !isfinite(c->shift)) return "scaling_factor is not positive";
    return NULL;
}

int vae_factor(const VaeConfig *c) { return 1 << (c->nlev - 1); }

void vae_build(Vae *v, const VaeConfig *c) {
    const char *bad = vae_config_check(c);
    if (bad) ep_die("vae: impossible configuration: %s", bad);
    memset(v, 0, sizeof *v);
    v->cfg = *c;
    int L = c->nlev, top = c->ch[L - 1];
    char s[96];
    conv_build(v, &v->enc_in, "encoder.conv_in", c->in_ch, c->ch[0], 3);
    for (int i = 0; i < L; i++) {
        VaeLevel *lv = &v->down[i];
        lv->nres = c->layers;
        for (int j = 0; j < c->layers; j++) {
            snprintf(s, sizeof s, "encoder.down_blocks.%d.resnets.%d", i, j);
            resnet_build(v, &lv->res[j], s, j ? c->ch[i] : c->ch[i ? i - 1 : 0], c->ch[i]);
        }
        if (i < L - 1) {
            snprintf(s, sizeof s, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            conv_build(v, &lv->resample, s, c->ch[i], c->ch[i], 3);
        }
    }
    mid_build(v, v->enc_mid, &v->enc_attn, "encoder.mid_block", top, c->mid_attn);
    norm_build(v, &v->enc_norm_out, "encoder.conv_norm_out", top);
    conv_build(v, &v->enc_out, "encoder.conv_out", top, 2 * c->latent, 3);

    conv_build(v, &v->dec_in, "decoder.conv_in", c->latent, top, 3);
    mid_build(v, v->dec_mid, &v->dec_attn, "decoder.mid_block", top, c->mid_attn);
    for (int i = 0; i < L; i++) {
        VaeLevel *lv = &v->up[i];
        int out = c->ch[L - 1 - i], prev = c->ch[L - 1 - (i ? i - 1 : 0)];
        lv->nres = c->layers + 1;
        for (int j = 0; j < lv->nres; j++) {
            snprintf(s, sizeof s, "decoder.up_blocks.%d.resnets.%d", i, j);
            resnet_build(v, &lv->res[j], s, j ? out : prev, out);
        }
        if (i < L - 1) {
            snprintf(s, sizeof s, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            conv_build(v, &lv->resample, s, out, out, 3);
        }
    }
    norm_build(v, &v->dec_norm_out, "decoder.conv_norm_out", c->ch[0]);
    conv_build(v, &v->dec_out, "decoder.conv_out", c->ch[0], c->out_ch, 3);
    if (c->quant) conv_build(v, &v->quant, "quant_conv", 2 * c->latent, 2 * c->latent, 1);
    if (c->post_quant) conv_build(v, &v->post_quant, "post_quant_conv", c->latent, c->latent, 1);
}

void vae_free(Vae *v) {
    for (int i = 0; i < v->nparam; i++) {
        const char *n = v->param[i].name;
        /* q, k, v point into the stacked matrices, freed once below */
        if (strstr(n, ".to_q.") || strstr(n, ".to_k.") || strstr(n, ".to_v.")) continue;
        free(v->param[i].p);
    }
    VaeAttn *a[2] = {&v->enc_attn, &v->dec_attn};
    for (int i = 0; i < 2; i++) free(a[i]->wqkv), free(a[i]->bqkv);
    memset(v, 0, sizeof *v);
}

/* ---- forward ---- */

/* A scratch buffer that grows (its contents are not kept when it does). */
typedef struct {
    float *p;
    size_t cap;
} Buf;

static float *grow(Buf *b, size_t n) {
    if (n > b->cap) {
        free(b->p);
        b->p = ep_malloc(n * sizeof(float), "VAE activations");
        b->cap = n;
    }
    return b->p;
}

typedef struct {
    Buf a, b, t1, t2, P; /* a: the current activation, b: the next; t1, t2 inside a layer; P: attention */
    int C, h, w;         /* a's shape */
} Work;

static void swap_ab(Work *k) {
    Buf t = k->a;
    k->a = k->b, k->b = t;
}

static void conv(const VaeConv *c, float *out, const float *in, int H, int W, int stride, int pad, int Ho, int Wo) {
    img_conv2d(out, in, c->w, c->b, c->cin, H, W, c->cout, c->k, stride, pad, Ho, Wo);
}

/* a [cin, h, w] -> a [cout, h, w] */
static void resnet(const VaeResnet *r, Work *k, int G) {
    size_t HW = (size_t)k->h * k->w;
    int cin = r->c1.cin, cout = r->c1.cout;
    const float *x = k->a.p;
    img_groupnorm(grow(&k->t1, cin * HW), x, r->n1.g, r->n1.b, cin, HW, G, GN_EPS, 1);
    conv(&r->c1, grow(&k->t2, cout * HW), k->t1.p, k->h, k->w, 1, 1, k->h, k->w);
    img_groupnorm(k->t2.p, k->t2.p, r->n2.g, r->n2.b, cout, HW, G, GN_EPS, 1);
    float *out = grow(&k->b, cout * HW);
    conv(&r->c2, out, k->t2.p, k->h, k->w, 1, 1, k->h, k->w);
    const float *sc = x;
    if (r->skip.w) conv(&r->skip, grow(&k->t1, cout * HW), x, k->h, k->w, 1, 0, k->h, k->w), sc = k->t1.p;
    for (size_t i = 0; i < cout * HW; i++) out[i] += sc[i];
    swap_ab(k);
    k->C = cout;
}

/* a [C, h, w] -> a [C, h, w]: the pixels as HW tokens of C features, one head */
static void attention(const VaeAttn *at, Work *k, int G) {
    int C = at->c, HW = k->h * k->w;
    const float *x = k->a.p;
    img_groupnorm(grow(&k->t1, (size_t)C * HW), x, at->n.g, at->n.b, C, HW, G, GN_EPS, 0);
    img_transpose(grow(&k->t2, (size_t)C * HW), k->t1.p, C, HW); /* [HW, C] */
    float *qkv = grow(&k->t1, (size_t)3 * C * HW);
    cpu_linear(qkv, k->t2.p, at->wqkv, at->bqkv, HW, C, 3 * C);
    /* queries are independent: each thread takes a slice of them against all keys */
    int T = omp_get_max_threads(), rows = (HW + T - 1) / T;
    float *P = grow(&k->P, (size_t)T * rows * HW), *o = k->t2.p;
#pragma omp parallel for
    for (int t = 0; t < T; t++) {
        int r0 = t * rows, r1 = r0 + rows < HW ? r0 + rows : HW;
        if (r1 <= r0) continue;
        KVSet kv = {qkv + C, qkv + 2 * C, 3 * C, HW};
        cpu_attention_one(o + (size_t)r0 * C, C, P + (size_t)t * rows * HW, qkv + (size_t)r0 * 3 * C, 3 * C, r1 - r0,
                          &kv, 1, 1, C);
    }
    cpu_linear(k->t1.p, o, at->wo, at->bo, HW, C, C); /* to_out, [HW, C] */
    float *out = grow(&k->b, (size_t)C * HW);
    img_transpose(out, k->t1.p, HW, C);
    for (size_t i = 0; i < (size_t)C * HW; i++) out[i] += x[i];
    swap_ab(k);
}

static void mid(const VaeResnet *res, const VaeAttn *at, Work *k, const VaeConfig *c) {
    resnet(&res[0], k, c->groups);
    if (c->mid_attn) attention(at, k, c->groups);
    resnet(&res[1], k, c->groups);
}

static void work_free(Work *k) { free(k->a.p), free(k->b.p), free(k->t1.p), free(k->t2.p), free(k->P.p); }

void vae_encode(const Vae *v, const float *x, int N, int H, int W, float *z) {
    const VaeConfig *c = &v->cfg;
    int f = vae_factor(c), G = c->groups, Lc = c->latent;
    if (H < f || W < f || H % f || W % f) ep_die("vae encode: %dx%d images are not multiples of %d", H, W, f);
    size_t zsz = (size_t)Lc * (H / f) * (W / f);
    Work k = {0};
    for (int n = 0; n < N; n++) {
        k.h = H, k.w = W, k.C = c->ch[0];
        conv(&v->enc_in, grow(&k.a, (size_t)k.C * H * W), x + (size_t)n * c->in_ch * H * W, H, W, 1, 1, H, W);
        for (int i = 0; i < c->nlev; i++) {
            const VaeLevel *lv = &v->down[i];
            for (int j = 0; j < lv->nres; j++) resnet(&lv->res[j], &k, G);
            if (lv->resample.w) { /* zero row and column at the far side, stride 2, no other padding */
                int h = k.h / 2, w = k.w / 2;
                conv(&lv->resample, grow(&k.b, (size_t)k.C * h * w), k.a.p, k.h, k.w, 2, 0, h, w);
                swap_ab(&k);
                k.h = h, k.w = w;
            }
        }
        mid(v->enc_mid, &v->enc_attn, &k, c);
        size_t hw = (size_t)k.h * k.w;
        img_groupnorm(grow(&k.t1, k.C * hw), k.a.p, v->enc_norm_out.g, v->enc_norm_out.b, k.C, hw, G, GN_EPS, 1);
        float *moments = grow(&k.b, 2 * Lc * hw), *zn = z + n * zsz;
        conv(&v->enc_out, moments, k.t1.p, k.h, k.w, 1, 1, k.h, k.w);
        if (c->quant) /* only the mean's rows of quant_conv: the first Lc */
            img_conv2d(zn, moments, v->quant.w, v->quant.b, 2 * Lc, k.h, k.w, Lc, 1, 1, 0, k.h, k.w);
        else
            memcpy(zn, moments, zsz * sizeof(float));
        for (size_t i = 0; i < zsz; i++) zn[i] = (zn[i] - c->shift) * c->scale;
    }
    work_free(&k);
}

void vae_decode(const Vae *v, const float *z, int N, int h, int w, float *x) {
    const VaeConfig *c = &v->cfg;
    int f = vae_factor(c), G = c->groups, Lc = c->latent, L = c->nlev;
    size_t zsz = (size_t)Lc * h * w, xsz = (size_t)c->out_ch * h * f * w * f;
    Work k = {0};
    for (int n = 0; n < N; n++) {
        float *u = grow(&k.t1, zsz);
        for (size_t i = 0; i < zsz; i++) u[i] = z[n * zsz + i] / c->scale + c->shift;
        k.h = h, k.w = w;
        if (c->post_quant)
            conv(&v->post_quant, grow(&k.t2, zsz), u, h, w, 1, 0, h, w), u = k.t2.p;
        k.C = c->ch[L - 1];
        conv(&v->dec_in, grow(&k.a, (size_t)k.C * h * w), u, h, w, 1, 1, h, w);
        mid(v->dec_mid, &v->dec_attn, &k, c);
        for (int i = 0; i < L; i++) {
            const VaeLevel *lv = &v->up[i];
            for (int j = 0; j < lv->nres; j++) resnet(&lv->res[j], &k, G);
            if (lv->resample.w) {
                size_t big = (size_t)k.C * 4 * k.h * k.w;
                img_upsample2x(grow(&k.t1, big), k.a.p, k.C, k.h, k.w);
                k.h *= 2, k.w *= 2;
                conv(&lv->resample, grow(&k.b, big), k.t1.p, k.h, k.w, 1, 1, k.h, k.w);
                swap_ab(&k);
            }
        }
        size_t hw = (size_t)k.h * k.w;
        img_groupnorm(grow(&k.t1, k.C * hw), k.a.p, v->dec_norm_out.g, v->dec_norm_out.b, k.C, hw, G, GN_EPS, 1);
        conv(&v->dec_out, x + n * xsz, k.t1.p, k.h, k.w, 1, 1, k.h, k.w);
    }
    work_free(&k);
}

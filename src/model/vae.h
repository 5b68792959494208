/* The Stable Diffusion VAE (diffusers' AutoencoderKL, docs/vae.md): images
 * [N, 3, H, W] in [-1, 1] <-> latents [N, 4, H/8, W/8], fp32, on the CPU only
 * (its image kernels, ops/image_cpu.h, have no CUDA version). The parameter
 * names are diffusers', so io/vae_load.c fills them from a diffusers
 * safetensors file; the shape comes from that file's tensors. */
#pragma once
#include <stddef.h>

#define VAE_MAX_LEVELS 8
#define VAE_MAX_LAYERS 8
#define VAE_MAX_PARAMS 1024

typedef struct {
    int in_ch, out_ch, latent;  /* 3, 3, 4 for SD */
    int nlev;                   /* resolution levels: len(block_out_channels), 4 for SD */
    int ch[VAE_MAX_LEVELS];     /* block_out_channels: 128, 256, 512, 512 */
    int layers;                 /* layers_per_block: 2 (the decoder has one more per level) */
    int groups;                 /* norm_num_groups: 32 */
    int quant, post_quant;      /* whether the 1x1 quant_conv / post_quant_conv exist (use_quant_conv...) */
    int mid_attn;               /* whether the mid blocks have their attention (mid_block_add_attention) */
    float scale, shift;         /* latent = (mean - shift) * scale; scaling_factor 0.18215, shift 0 */
} VaeConfig;

typedef struct { float *w, *b; int cin, cout, k; } VaeConv;
typedef struct { float *g, *b; int c; } VaeNorm;
typedef struct {
    VaeNorm n1, n2;
    VaeConv c1, c2, skip; /* skip.w NULL: identity shortcut (cin == cout) */
} VaeResnet;
typedef struct {
    VaeNorm n;
    int c;
    float *wqkv, *bqkv; /* to_q, to_k, to_v stacked: [3C, C], [3C] (one product for the fused qkv rows) */
    float *wo, *bo;     /* to_out.0 */
} VaeAttn;
typedef struct {
    VaeResnet res[VAE_MAX_LAYERS + 1];
    int nres;
    VaeConv resample; /* Downsample2D / Upsample2D conv; w NULL on the last level */
} VaeLevel;

/* One named tensor, as diffusers names and shapes it. */
typedef struct {
    char name[96];
    float *p;
    int ndim, shape[4];
    size_t numel;
} VaeParam;

typedef struct {
    VaeConfig cfg;
    VaeConv enc_in, enc_out, quant, post_quant, dec_in, dec_out;
    VaeLevel down[VAE_MAX_LEVELS], up[VAE_MAX_LEVELS];
    VaeResnet enc_mid[2], dec_mid[2];
    VaeAttn enc_attn, dec_attn;
    VaeNorm enc_norm_out, dec_norm_out;
    int nparam;
    VaeParam param[VAE_MAX_PARAMS]; /* every tensor, in diffusers' state-dict order */
    size_t total;                   /* floats in all of them */
} Vae;

/* NULL when the configuration is possible, else why not. */
const char *vae_config_check(const VaeConfig *c);
/* Allocates every tensor (zeroed) for a checked configuration. */
void vae_build(Vae *v, const VaeConfig *c);
void vae_free(Vae *v);
/* The spatial reduction: 2^(nlev-1), 8 for SD. */
int vae_factor(const VaeConfig *c);
/* x [N, in_ch, H, W] in [-1, 1] -> z [N, latent, H/f, W/f]: the posterior's
 * mean, shifted and scaled. H and W must be multiples of f. */
void vae_encode(const Vae *v, const float *x, int N, int H, int W, float *z);
/* z [N, latent, h, w] -> x [N, out_ch, h*f, w*f] (not clamped). */
void vae_decode(const Vae *v, const float *z, int N, int h, int w, float *x);

/* CPU-only kernels for whole images [C, H, W] (the SD VAE, model/vae.c):
 * GroupNorm, nearest 2x upsampling, a convolution that bounds its im2col
 * scratch, and a transpose between channel-major images and token rows.
 * Plain C with OpenMP, on host memory. They are not ops of ops_list.h: the
 * CUDA backend lacks them, so the VAE runs on the CPU only. */
#pragma once
#include <stddef.h>

/* GroupNorm of one image x [C, HW] in G groups of C/G channels (statistics
 * over each group's C/G * HW values, in double), then the per-channel affine
 * gamma, beta, then SiLU when silu is set. out may equal x. */
void img_groupnorm(float *out, const float *x, const float *gamma, const float *beta, int C, size_t HW, int G,
                   float eps, int silu);
/* Nearest-neighbour 2x: in [C, H, W] -> out [C, 2H, 2W]. */
void img_upsample2x(float *out, const float *in, int C, int H, int W);
/* out [cols, rows] = in [rows, cols]^T. */
void img_transpose(float *out, const float *in, size_t rows, size_t cols);
/* One image in [Cin, H, W] -> out [Cout, Ho, Wo], square kernel k, W
 * [Cout, Cin, k, k]: out[o, y, x] = bias[o] + sum W[o, c, i, j] in[c, y*stride
 * - pad + i, x*stride - pad + j], reads outside the image being zero. Ho and
 * Wo are the caller's, so padding may be asymmetric (pad 0 with one more row
 * and column of zeros at the far side: Downsample2D). Output rows go in
 * bands through im2col + sgemm, one band per thread at a time, each band's
 * scratch at most a few MB (a 512x512 image's whole im2col would be GBs).
 * A 1x1 stride-1 convolution is one product, without scratch. */
void img_conv2d(float *out, const float *in, const float *W, const float *bias, int Cin, int H, int Wd, int Cout,
                int k, int stride, int pad, int Ho, int Wo);

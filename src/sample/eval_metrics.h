/* Frame metrics of generated against ground-truth videos (`entprog eval`,
 * definitions in docs/sampling.md). Frames are planar 8-bit RGB [3,H,W];
 * every sum runs in double. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SSIM_WIN 11
#define SSIM_SIGMA 1.5
#define SSIM_C1 ((0.01 * 255) * (0.01 * 255))
#define SSIM_C2 ((0.03 * 255) * (0.03 * 255))

/* Mean SSIM of one channel [H,W]: an 11x11 Gaussian window (sigma 1.5,
 * weights normalised to sum 1) at every position where it fits inside the
 * picture ("valid"); a side shorter than 11 shrinks the window to that side,
 * the Gaussian recentred and renormalised. Population (weighted) variances. */
double metric_ssim_channel(const uint8_t *a, const uint8_t *b, int H, int W);
/* SSIM of an RGB frame: the mean of the three channels' SSIM. */
double metric_ssim(const uint8_t *a, const uint8_t *b, int H, int W);
/* 10 log10(255^2 / MSE) over the n bytes; INFINITY when they are identical. */
double metric_psnr(const uint8_t *a, const uint8_t *b, size_t n);
/* mean |a - b| / 255 over the n bytes (in [0, 1]). */
double metric_l1(const uint8_t *a, const uint8_t *b, size_t n);

/* Temporal measures of an F-frame clip of `per` bytes per frame; NaN when F < 2.
 * tdiff: mean over f = 1..F-1 and bytes of |x_f - x_{f-1}| / 255 (how much the clip changes).
 * tdiff_err: mean of |(g_f - g_{f-1}) - (r_f - r_{f-1})| / 255 (how far the
 * generated motion is from the true one; 0 for a perfect copy). */
double metric_tdiff(const uint8_t *x, int F, size_t per);
double metric_tdiff_err(const uint8_t *g, const uint8_t *r, int F, size_t per);

typedef struct {
    double ssim, psnr, l1;              /* means over the clip's frames */
    double tdiff_gen, tdiff_gt, tdiff_err;
} ClipMetrics;

/* Every metric of one generated clip g against its truth r, both [F,3,H,W]. */
void metric_clip(const uint8_t *g, const uint8_t *r, int F, int H, int W, ClipMetrics *m);

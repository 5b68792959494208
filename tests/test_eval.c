/* Frame metric tests (label: sample): hand-computed PSNR, L1 and SSIM values,
 * and SSIM against a direct (non-separable) implementation written here. */
#include "sample/eval_metrics.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

/* A fixed non-trivial RGB picture [3,H,W]: smooth gradients plus a hashed texture. */
static void picture(uint8_t *p, int H, int W, unsigned salt) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                unsigned h = (unsigned)(x * 73856093u) ^ (unsigned)(y * 19349663u) ^ (c * 83492791u) ^ salt;
                h = (h ^ (h >> 13)) * 0x5bd1e995u;
                int v = 40 + 5 * x + 3 * y + 20 * c + (int)((h >> 24) % 60);
                p[((size_t)c * H + y) * W + x] = (uint8_t)(v > 255 ? 255 : v);
            }
}

/* SSIM of one channel by the definition: a full 2-D window per position. */
static double ssim_direct(const uint8_t *a, const uint8_t *b, int H, int W) {
    int wy = H < 11 ? H : 11, wx = W < 11 ? W : 11;
    double w2[11][11], sum = 0;
    for (int i = 0; i < wy; i++)
        for (int j = 0; j < wx; j++) {
            double dy = i - 0.5 * (wy - 1), dx = j - 0.5 * (wx - 1);
            sum += w2[i][j] = exp(-(dy * dy + dx * dx) / (2 * 1.5 * 1.5));
        }
    double C1 = pow(0.01 * 255, 2), C2 = pow(0.03 * 255, 2), total = 0;
    for (int y = 0; y + wy <= H; y++)
        for (int x = 0; x + wx <= W; x++) {
            double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
            for (int i = 0; i < wy; i++)
                for (int j = 0; j < wx; j++) {
                    double w = w2[i][j] / sum, va = a[(y + i) * W + x + j], vb = b[(y + i) * W + x + j];
                    ma += w * va, mb += w * vb, saa += w * va * va, sbb += w * vb * vb, sab += w * va * vb;
                }
            double va = saa - ma * ma, vb = sbb - mb * mb, cov = sab - ma * mb;
            total += (2 * ma * mb + C1) * (2 * cov + C2) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
        }
    return total / ((H - wy + 1) * (W - wx + 1));
}

static void test_identical(void) {
    enum { H = 16, W = 20 };
    uint8_t a[3 * H * W];
    picture(a, H, W, 1);
    check(metric_ssim(a, a, H, W) == 1.0, "SSIM of identical pictures is exactly 1");
    check(isinf(metric_psnr(a, a, sizeof a)) && metric_psnr(a, a, sizeof a) > 0, "PSNR of identical pictures is +inf");
    check(metric_l1(a, a, sizeof a) == 0.0, "L1 of identical pictures is 0");
}

static void test_offset(void) {
    enum { H = 12, W = 12 };
    uint8_t a[3 * H * W], b[3 * H * W];
    picture(a, H, W, 2);
    for (size_t j = 0; j < sizeof a; j++) {
        if (a[j] > 245) a[j] = 245;
        b[j] = (uint8_t)(a[j] + 10);
    }
    double want = 20 * log10(255.0 / 10);
    double got = metric_psnr(a, b, sizeof a);
    char what[128];
    snprintf(what, sizeof what, "PSNR of a +10 offset = 20 log10(255/10) = %.6f (got %.12f)", want, got);
    check(fabs(got - want) < 1e-10, what);
    snprintf(what, sizeof what, "L1 of a +10 offset = 10/255 (got %.12f)", metric_l1(a, b, sizeof a));
    check(fabs(metric_l1(a, b, sizeof a) - 10.0 / 255) < 1e-14, what);
}

static void test_l1_psnr_known(void) {
    uint8_t a[6] = {0, 0, 0, 255, 100, 7}, b[6] = {255, 0, 10, 255, 90, 7};
    double l1 = (255 + 10 + 10) / (255.0 * 6), mse = (255.0 * 255 + 100 + 100) / 6;
    check(fabs(metric_l1(a, b, 6) - l1) < 1e-15, "L1 of a hand-made pair = 275/(255*6)");
    check(fabs(metric_psnr(a, b, 6) - 10 * log10(255.0 * 255 / mse)) < 1e-12, "PSNR of a hand-made pair by hand");
}

static void test_ssim_constant(void) {
    enum { H = 13, W = 15 };
    uint8_t a[H * W], b[H * W];
    memset(a, 80, sizeof a);
    memset(b, 200, sizeof b);
    double C1 = pow(0.01 * 255, 2), want = (2.0 * 80 * 200 + C1) / (80.0 * 80 + 200.0 * 200 + C1);
    double got = metric_ssim_channel(a, b, H, W);
    char what[128];
    snprintf(what, sizeof what, "SSIM of flat 80 vs flat 200 = (2*80*200+C1)/(80^2+200^2+C1) = %.9f (got %.9f)", want, got);
    check(fabs(got - want) < 1e-12, what);
}

static void test_ssim_direct(int H, int W) {
    uint8_t *a = malloc((size_t)3 * H * W), *b = malloc((size_t)3 * H * W);
    picture(a, H, W, 3);
    picture(b, H, W, 4);
    double direct = 0;
    for (int c = 0; c < 3; c++) direct += ssim_direct(a + (size_t)c * H * W, b + (size_t)c * H * W, H, W);
    direct /= 3;
    double got = metric_ssim(a, b, H, W);
    char what[160];
    snprintf(what, sizeof what, "SSIM %dx%d of two textured pictures = direct 2-D window result %.9f (got %.9f)", H, W,
             direct, got);
    check(fabs(got - direct) < 1e-9 && got < 0.99 && got > -1, what);
    free(a), free(b);
}

static void test_temporal(void) {
    enum { F = 4, PER = 30 };
    uint8_t still[F * PER], moving[F * PER], flicker[F * PER];
    for (int f = 0; f < F; f++)
        for (int j = 0; j < PER; j++) {
            still[f * PER + j] = 100;
            moving[f * PER + j] = (uint8_t)(100 + 10 * f);
            flicker[f * PER + j] = (uint8_t)(f % 2 ? 130 : 100);
        }
    check(metric_tdiff(still, F, PER) == 0, "tdiff of a still clip is 0");
    check(fabs(metric_tdiff(moving, F, PER) - 10.0 / 255) < 1e-15, "tdiff of a clip brightening 10 per frame = 10/255");
    check(fabs(metric_tdiff_err(moving, still, F, PER) - 10.0 / 255) < 1e-15, "tdiff_err of moving vs still = 10/255");
    check(metric_tdiff_err(moving, moving, F, PER) == 0, "tdiff_err of a clip against itself is 0");
    /* flicker 0,+30,-30,+30 against +10 each: |30-10|, |-30-10|, |30-10| -> mean 80/3 */
    check(fabs(metric_tdiff_err(flicker, moving, F, PER) - 80.0 / 3 / 255) < 1e-14, "tdiff_err of flicker vs steady motion = 80/3/255");
    check(isnan(metric_tdiff(still, 1, PER)) && isnan(metric_tdiff_err(still, still, 1, PER)), "temporal measures of one frame are NaN");
}

int main(void) {
    test_identical();
    test_offset();
    test_l1_psnr_known();
    test_ssim_constant();
    test_ssim_direct(16, 16);
    test_ssim_direct(24, 37);
    test_ssim_direct(8, 13);  /* shorter than the window: window 8 x 11 */
    test_ssim_direct(5, 5);
    test_temporal();
    return failures ? 1 : 0;
}

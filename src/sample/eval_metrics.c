/* Frame metrics (eval_metrics.h). SSIM filters separably: a horizontal pass
 * of the five local moments, then a vertical one over the valid rows. */
#include "sample/eval_metrics.h"
#include "core/die.h"
#include <math.h>
#include <stdlib.h>

/* n Gaussian weights (sigma SSIM_SIGMA) centred on (n-1)/2, summing to 1. */
static void gauss_window(int n, double *g) {
    double c = 0.5 * (n - 1), sum = 0;
    for (int k = 0; k < n; k++) sum += g[k] = exp(-(k - c) * (k - c) / (2 * SSIM_SIGMA * SSIM_SIGMA));
    for (int k = 0; k < n; k++) g[k] /= sum;
}

enum { M_A, M_B, M_AA, M_BB, M_AB, N_MOM };

/* Horizontal pass: h[m][y][x] = sum_k g[k] * moment_m(y, x + k) for the ow valid columns. */
static void filter_rows(const uint8_t *a, const uint8_t *b, int H, int W, const double *g, int wx, double *h) {
    int ow = W - wx + 1;
    size_t plane = (size_t)H * ow;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < ow; x++) {
            double s[N_MOM] = {0};
            for (int k = 0; k < wx; k++) {
                double va = a[(size_t)y * W + x + k], vb = b[(size_t)y * W + x + k];
                s[M_A] += g[k] * va, s[M_B] += g[k] * vb;
                s[M_AA] += g[k] * va * va, s[M_BB] += g[k] * vb * vb, s[M_AB] += g[k] * va * vb;
            }
            for (int m = 0; m < N_MOM; m++) h[m * plane + (size_t)y * ow + x] = s[m];
        }
}

static double ssim_at(const double mom[N_MOM]) {
    double ma = mom[M_A], mb = mom[M_B];
    /* rounded products (volatile stops fused multiply-adds): identical pictures
     * then give numerator == denominator bit for bit, so SSIM is exactly 1 */
    volatile double pab = ma * mb, paa = ma * ma, pbb = mb * mb;
    double va = mom[M_AA] - paa, vb = mom[M_BB] - pbb, cov = mom[M_AB] - pab;
    return ((2 * pab + SSIM_C1) * (2 * cov + SSIM_C2)) / ((paa + pbb + SSIM_C1) * (va + vb + SSIM_C2));
}

double metric_ssim_channel(const uint8_t *a, const uint8_t *b, int H, int W) {
    if (H < 1 || W < 1) ep_die("internal: SSIM of an empty %dx%d picture", H, W);
    int wy = H < SSIM_WIN ? H : SSIM_WIN, wx = W < SSIM_WIN ? W : SSIM_WIN;
    int oh = H - wy + 1, ow = W - wx + 1;
    double gy[SSIM_WIN], gx[SSIM_WIN];
    gauss_window(wy, gy);
    gauss_window(wx, gx);
    size_t plane = (size_t)H * ow;
    double *h = ep_malloc(N_MOM * plane * sizeof(double), "SSIM moments");
    filter_rows(a, b, H, W, gx, wx, h);
    double total = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            double mom[N_MOM] = {0};
            for (int m = 0; m < N_MOM; m++)
                for (int k = 0; k < wy; k++) mom[m] += gy[k] * h[m * plane + (size_t)(y + k) * ow + x];
            total += ssim_at(mom);
        }
    free(h);
    return total / ((double)oh * ow);
}

double metric_ssim(const uint8_t *a, const uint8_t *b, int H, int W) {
    size_t px = (size_t)H * W;
    double s = 0;
    for (int c = 0; c < 3; c++) s += metric_ssim_channel(a + c * px, b + c * px, H, W);
    return s / 3;
}

double metric_psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t j = 0; j < n; j++) {
        double d = (double)a[j] - b[j];
        se += d * d;
    }
    if (se == 0) return INFINITY;
    return 10 * log10(255.0 * 255.0 / (se / (double)n));
}

double metric_l1(const uint8_t *a, const uint8_t *b, size_t n) {
    double s = 0;
    for (size_t j = 0; j < n; j++) s += fabs((double)a[j] - b[j]);
    return s / (255.0 * (double)n);
}

double metric_tdiff(const uint8_t *x, int F, size_t per) {
    if (F < 2) return NAN;
    double s = 0;
    for (int f = 1; f < F; f++) s += metric_l1(x + f * per, x + (f - 1) * per, per);
    return s / (F - 1);
}

double metric_tdiff_err(const uint8_t *g, const uint8_t *r, int F, size_t per) {
    if (F < 2) return NAN;
    double s = 0;
    for (int f = 1; f < F; f++)
        for (size_t j = 0; j < per; j++) {
            double dg = (double)g[f * per + j] - g[(f - 1) * per + j], dr = (double)r[f * per + j] - r[(f - 1) * per + j];
            s += fabs(dg - dr);
        }
    return s / (255.0 * (double)per * (F - 1));
}

void metric_clip(const uint8_t *g, const uint8_t *r, int F, int H, int W, ClipMetrics *m) {
    size_t per = (size_t)3 * H * W;
    m->ssim = m->psnr = m->l1 = 0;
    for (int f = 0; f < F; f++) {
        m->ssim += metric_ssim(g + f * per, r + f * per, H, W);
        m->psnr += metric_psnr(g + f * per, r + f * per, per);
        m->l1 += metric_l1(g + f * per, r + f * per, per);
    }
    m->ssim /= F, m->psnr /= F, m->l1 /= F;
    m->tdiff_gen = metric_tdiff(g, F, per);
    m->tdiff_gt = metric_tdiff(r, F, per);
    m->tdiff_err = metric_tdiff_err(g, r, F, per);
}

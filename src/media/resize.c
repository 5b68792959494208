/* Area-averaging crop and resize, separable: weights per output column and
 * per output row, then a row pass and a column pass in float. */
#include "media/resize.h"
#include "core/die.h"
#include <math.h>
#include <stdlib.h>

/* For each of n outputs covering [a, b) of a source axis of length len: the
 * first source index and the weights of the source pixels it covers
 * (span entries each, zero-padded). Pixels outside [0, len) get no weight. */
static int axis_weights(double a, double b, int n, int len, int **first, float **wt) {
    double step = (b - a) / n;
    int span = (int)ceil(step) + 2;
    *first = ep_malloc(sizeof(int) * n, "resize index");
    *wt = ep_calloc((size_t)n * span, sizeof(float), "resize weights");
    for (int o = 0; o < n; o++) {
        double lo = a + o * step, hi = lo + step;
        int i0 = (int)floor(lo);
        (*first)[o] = i0;
        for (int k = 0; k < span; k++) {
            int i = i0 + k;
            double cover = fmin(hi, i + 1.0) - fmax(lo, (double)i);
            if (cover > 0 && i >= 0 && i < len) (*wt)[(size_t)o * span + k] = (float)(cover / step);
        }
    }
    return span;
}

void crop_resize_rgb(const uint8_t *rgb, int w, int h, double x0, double y0, double x1, double y1, int ow, int oh,
                     uint8_t *out) {
    int *fx, *fy;
    float *wx, *wy;
    int sx = axis_weights(x0, x1, ow, w, &fx, &wx);
    int sy = axis_weights(y0, y1, oh, h, &fy, &wy);
    /* Row pass: every source row the output needs, resampled to ow columns. */
    float *rows = ep_calloc((size_t)h * ow * 3, sizeof(float), "resize rows");
    int ylo = fy[0] < 0 ? 0 : fy[0], yhi = fy[oh - 1] + sy > h ? h : fy[oh - 1] + sy;
    for (int y = ylo; y < yhi; y++) {
        const uint8_t *src = rgb + (size_t)y * w * 3;
        for (int o = 0; o < ow; o++) {
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < sx; k++) {
                float wt = wx[(size_t)o * sx + k];
                if (wt == 0) continue;
                const uint8_t *p = src + (size_t)(fx[o] + k) * 3;
                for (int c = 0; c < 3; c++) acc[c] += wt * p[c];
            }
            for (int c = 0; c < 3; c++) rows[((size_t)y * ow + o) * 3 + c] = acc[c];
        }
    }
    /* Column pass into planar bytes. */
    for (int o = 0; o < oh; o++)
        for (int x = 0; x < ow; x++) {
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < sy; k++) {
                float wt = wy[(size_t)o * sy + k];
                if (wt == 0) continue;
                const float *p = rows + ((size_t)(fy[o] + k) * ow + x) * 3;
                for (int c = 0; c < 3; c++) acc[c] += wt * p[c];
            }
            for (int c = 0; c < 3; c++) {
                float v = acc[c] + 0.5f;
                out[((size_t)c * oh + o) * ow + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    free(rows), free(fx), free(fy), free(wx), free(wy);
}

#include "ops/embed.h"
#include <math.h>
#include <stddef.h>

/* DiT's 1-D helper: d channels for position pos, sin half then cos half,
 * omega_i = 10000^(-i/(d/2)), computed in double. */
static void sincos_1d(float *out, int d, double pos) {
    int half = d / 2;
    for (int i = 0; i < half; i++) {
        double omega = 1.0 / pow(10000.0, (double)i / half);
        out[i] = (float)sin(pos * omega);
        out[half + i] = (float)cos(pos * omega);
    }
}

void embed_pos2d(float *out, int D, int gh, int gw) {
    for (int i = 0; i < gh; i++)
        for (int j = 0; j < gw; j++) {
            float *row = out + (size_t)(i * gw + j) * D;
            sincos_1d(row, D / 2, j);
            sincos_1d(row + D / 2, D / 2, i);
        }
}

void embed_frames(float *out, int D, int F) {
    for (int f = 0; f < F; f++) sincos_1d(out + (size_t)f * D, D, f);
}

void embed_timestep(float *out, int t) {
    for (int i = 0; i < 128; i++) {
        double f = exp(-log(10000.0) * i / 128.0);
        out[i] = (float)cos(t * f);
        out[128 + i] = (float)sin(t * f);
    }
}

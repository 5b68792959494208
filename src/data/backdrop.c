#include "data/backdrop.h"
#include "data/figure.h"
#include <math.h>

static float unif(Rng *r, float a, float b) { return a + (b - a) * rng_uniform(r); }

static void mix(const float a[3], const float b[3], float t, float out[3]) {
    for (int k = 0; k < 3; k++) out[k] = a[k] + t * (b[k] - a[k]);
}

static float clamp01(float v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }

void backdrop_sample(Backdrop *b, Rng *r, int W, int H, float ground_y) {
    b->w = W;
    b->h = H;
    b->kind = (int)rng_below(r, BACKDROP_KINDS);
    /* Walls are muted and either light or dark, so the clothes can contrast. */
    float hue = unif(r, 0, 1), sat = unif(r, 0.05f, 0.4f);
    float v = rng_below(r, 5) < 3 ? unif(r, 0.6f, 0.95f) : unif(r, 0.12f, 0.35f);
    hsv_to_rgb(hue, sat, v, b->wall0);
    float dv = unif(r, 0.08f, 0.25f) * (v > 0.5f ? -1.0f : 1.0f);
    hsv_to_rgb(hue + unif(r, -0.06f, 0.06f), clamp01(sat + unif(r, -0.1f, 0.1f)), clamp01(v + dv), b->wall1);
    float fv = unif(r, 0.25f, 0.6f);
    hsv_to_rgb(unif(r, 0, 1), unif(r, 0.1f, 0.45f), fv, b->floor0);
    hsv_to_rgb(unif(r, 0, 1), unif(r, 0.1f, 0.45f), clamp01(fv + unif(r, -0.15f, 0.15f)), b->floor1);
    b->floor_y = rng_below(r, 4) ? ground_y - unif(r, 0.03f, 0.09f) * H : (float)H;
    b->stripe_period = unif(r, 0.08f, 0.2f) * W;
    b->stripe_angle = rng_below(r, 2) ? 0.0f : unif(r, -0.8f, 0.8f);
    for (int i = 0; i <= BACKDROP_GRID; i++)
        for (int j = 0; j <= BACKDROP_GRID; j++) b->noise[i][j] = unif(r, 0, 1);
}

/* Smooth value noise: bilinear over the lattice with a smoothstep fade. */
static float value_noise(const Backdrop *b, float u, float v) {
    u *= BACKDROP_GRID, v *= BACKDROP_GRID;
    int i = (int)v, j = (int)u;
    if (i >= BACKDROP_GRID) i = BACKDROP_GRID - 1;
    if (j >= BACKDROP_GRID) j = BACKDROP_GRID - 1;
    float fy = v - i, fx = u - j;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    float top = b->noise[i][j] + fx * (b->noise[i][j + 1] - b->noise[i][j]);
    float bot = b->noise[i + 1][j] + fx * (b->noise[i + 1][j + 1] - b->noise[i + 1][j]);
    return top + fy * (bot - top);
}

static void backdrop_color(const Backdrop *b, float x, float y, float rgb[3]) {
    if (y >= b->floor_y) {
        mix(b->floor0, b->floor1, (y - b->floor_y) / fmaxf(1.0f, b->h - b->floor_y), rgb);
        return;
    }
    float t = 0;
    switch (b->kind) {
    case BACKDROP_VGRAD: t = y / b->floor_y; break;
    case BACKDROP_HGRAD: t = x / b->w; break;
    case BACKDROP_NOISE: t = value_noise(b, x / b->w, y / b->h); break;
    default: {
        float d = x * cosf(b->stripe_angle) + y * sinf(b->stripe_angle);
        t = (float)((int)floorf(d / b->stripe_period) & 1);
    }
    }
    mix(b->wall0, b->wall1, t, rgb);
}

void backdrop_draw(const Backdrop *b, Canvas *c) {
    const int ss = RASTER_SS;
    long plane = (long)c->w * c->h;
    for (int i = 0; i < c->h; i++)
        for (int j = 0; j < c->w; j++) {
            float acc[3] = {0, 0, 0};
            for (int si = 0; si < ss; si++)
                for (int sj = 0; sj < ss; sj++) {
                    float rgb[3];
                    backdrop_color(b, j + (sj + 0.5f) / ss, i + (si + 0.5f) / ss, rgb);
                    for (int k = 0; k < 3; k++) acc[k] += rgb[k];
                }
            for (int k = 0; k < 3; k++) c->px[k * plane + (long)i * c->w + j] = acc[k] / (ss * ss);
        }
}

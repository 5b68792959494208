#include "media/raster.h"
#include "core/die.h"
#include <math.h>
#include <stdlib.h>

void canvas_init(Canvas *c, int w, int h) {
    c->w = w;
    c->h = h;
    c->px = ep_calloc((size_t)3 * w * h, sizeof(float), "canvas");
}

void canvas_free(Canvas *c) {
    free(c->px);
    c->px = NULL;
}

void canvas_clear(Canvas *c, const float rgb[3]) {
    long n = (long)c->w * c->h;
    for (int ch = 0; ch < 3; ch++)
        for (long i = 0; i < n; i++) c->px[ch * n + i] = rgb[ch];
}

void solid_color(const void *paint, float x, float y, float rgb[3]) {
    (void)x;
    (void)y;
    const SolidPaint *s = paint;
    for (int k = 0; k < 3; k++) rgb[k] = s->rgb[k];
}

void raster_fill(Canvas *c, float x0, float y0, float x1, float y1,
                 InsideFn inside, const void *shape, ColorFn color, const void *paint) {
    int ix0 = (int)floorf(x0), iy0 = (int)floorf(y0);
    int ix1 = (int)ceilf(x1), iy1 = (int)ceilf(y1);
    if (ix0 < 0) ix0 = 0;
    if (iy0 < 0) iy0 = 0;
    if (ix1 > c->w) ix1 = c->w;
    if (iy1 > c->h) iy1 = c->h;
    const float step = 1.0f / RASTER_SS, norm = 1.0f / (RASTER_SS * RASTER_SS);
    long plane = (long)c->w * c->h;
    for (int i = iy0; i < iy1; i++) {
        for (int j = ix0; j < ix1; j++) {
            /* Sum the colours of the covered subsamples: the pixel becomes
             * old * (1 - coverage) + mean covered colour * coverage. */
            float acc[3] = {0, 0, 0};
            int hits = 0;
            for (int si = 0; si < RASTER_SS; si++) {
                float y = i + (si + 0.5f) * step;
                for (int sj = 0; sj < RASTER_SS; sj++) {
                    float x = j + (sj + 0.5f) * step;
                    if (!inside(shape, x, y)) continue;
                    float rgb[3];
                    color(paint, x, y, rgb);
                    acc[0] += rgb[0];
                    acc[1] += rgb[1];
                    acc[2] += rgb[2];
                    hits++;
                }
            }
            if (!hits) continue;
            float cover = hits * norm;
            float *p = c->px + (long)i * c->w + j;
            for (int k = 0; k < 3; k++) p[k * plane] = p[k * plane] * (1.0f - cover) + acc[k] * norm;
        }
    }
}

/* ---- shapes ---- */

static float seg_param(Vec2 a, Vec2 b, float x, float y) {
    float dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
    if (len2 <= 1e-12f) return 0.0f;
    float t = ((x - a.x) * dx + (y - a.y) * dy) / len2;
    return t < 0.f ? 0.f : (t > 1.f ? 1.f : t);
}

static float seg_dist2(Vec2 a, Vec2 b, float x, float y) {
    float t = seg_param(a, b, x, y);
    float ex = a.x + t * (b.x - a.x) - x, ey = a.y + t * (b.y - a.y) - y;
    return ex * ex + ey * ey;
}

static int inside_capsule(const void *shape, float x, float y) {
    const Capsule *s = shape;
    float t = seg_param(s->a, s->b, x, y);
    float r = s->ra + t * (s->rb - s->ra);
    float ex = s->a.x + t * (s->b.x - s->a.x) - x, ey = s->a.y + t * (s->b.y - s->a.y) - y;
    return ex * ex + ey * ey <= r * r;
}

static int inside_ellipse(const void *shape, float x, float y) {
    const Ellipse *s = shape;
    float cs = cosf(s->angle), sn = sinf(s->angle);
    float dx = x - s->c.x, dy = y - s->c.y;
    float u = (dx * cs + dy * sn) / s->rx, v = (-dx * sn + dy * cs) / s->ry;
    return u * u + v * v <= 1.0f;
}

static int inside_quad(const void *shape, float x, float y) {
    const Quad *s = shape;
    int pos = 0, neg = 0;
    for (int k = 0; k < 4; k++) {
        Vec2 a = s->p[k], b = s->p[(k + 1) & 3];
        float cr = (b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x);
        pos += cr >= 0;
        neg += cr <= 0;
    }
    if (pos == 4 || neg == 4) return 1;
    float r2 = s->round * s->round;
    for (int k = 0; k < 4; k++)
        if (seg_dist2(s->p[k], s->p[(k + 1) & 3], x, y) <= r2) return 1;
    return 0;
}

void draw_capsule(Canvas *c, const Capsule *s, ColorFn color, const void *paint) {
    float r = fmaxf(s->ra, s->rb);
    raster_fill(c, fminf(s->a.x, s->b.x) - r, fminf(s->a.y, s->b.y) - r,
                fmaxf(s->a.x, s->b.x) + r, fmaxf(s->a.y, s->b.y) + r, inside_capsule, s, color, paint);
}

void draw_ellipse(Canvas *c, const Ellipse *s, ColorFn color, const void *paint) {
    float r = fmaxf(s->rx, s->ry);
    raster_fill(c, s->c.x - r, s->c.y - r, s->c.x + r, s->c.y + r, inside_ellipse, s, color, paint);
}

void draw_quad(Canvas *c, const Quad *s, ColorFn color, const void *paint) {
    float x0 = s->p[0].x, x1 = x0, y0 = s->p[0].y, y1 = y0;
    for (int k = 1; k < 4; k++) {
        x0 = fminf(x0, s->p[k].x);
        x1 = fmaxf(x1, s->p[k].x);
        y0 = fminf(y0, s->p[k].y);
        y1 = fmaxf(y1, s->p[k].y);
    }
    raster_fill(c, x0 - s->round, y0 - s->round, x1 + s->round, y1 + s->round, inside_quad, s, color, paint);
}

void draw_capsule_solid(Canvas *c, Vec2 a, Vec2 b, float ra, float rb, const float rgb[3]) {
    Capsule s = {a, b, ra, rb};
    SolidPaint p = {{rgb[0], rgb[1], rgb[2]}};
    draw_capsule(c, &s, solid_color, &p);
}

void draw_disc_solid(Canvas *c, Vec2 centre, float r, const float rgb[3]) {
    draw_capsule_solid(c, centre, centre, r, r, rgb);
}

/* A tiny anti-aliased rasteriser for the synthetic dataset: filled shapes on a
 * planar float RGB canvas [3][h][w] in [0,1]. Every pixel is supersampled on
 * an RASTER_SS x RASTER_SS grid, so thin limbs at 16x16 still show up as
 * partial coverage instead of vanishing or flickering between frames. */
#pragma once

#define RASTER_SS 4

typedef struct {
    int w, h;
    float *px; /* [3][h][w], channel planes as in the [C,H,W] dataset layout */
} Canvas;

typedef struct { float x, y; } Vec2;

/* Point-in-shape test, in canvas pixel coordinates (pixel (i,j) spans [j,j+1) x [i,i+1)). */
typedef int (*InsideFn)(const void *shape, float x, float y);
/* Colour of the surface at a point (lets patterns follow the body). */
typedef void (*ColorFn)(const void *paint, float x, float y, float rgb[3]);

/* Shapes. */
typedef struct { Vec2 a, b; float ra, rb; } Capsule;     /* segment a-b, radius ra at a tapering to rb at b */
typedef struct { Vec2 c; float rx, ry, angle; } Ellipse; /* angle: rotation of the rx axis, radians */
typedef struct { Vec2 p[4]; float round; } Quad;         /* convex quad (any winding), edges inflated by `round` */

/* Paints. */
typedef struct { float rgb[3]; } SolidPaint;

void canvas_init(Canvas *c, int w, int h);
void canvas_free(Canvas *c);
void canvas_clear(Canvas *c, const float rgb[3]);
static inline float *canvas_at(Canvas *c, int ch, int y, int x) { return c->px + ((long)ch * c->h + y) * c->w + x; }

/* Composite a shape over the canvas inside the bounding box [x0,x1] x [y0,y1]. */
void raster_fill(Canvas *c, float x0, float y0, float x1, float y1,
                 InsideFn inside, const void *shape, ColorFn color, const void *paint);

void solid_color(const void *paint, float x, float y, float rgb[3]);

/* Convenience wrappers that compute the bounding box. */
void draw_capsule(Canvas *c, const Capsule *s, ColorFn color, const void *paint);
void draw_ellipse(Canvas *c, const Ellipse *s, ColorFn color, const void *paint);
void draw_quad(Canvas *c, const Quad *s, ColorFn color, const void *paint);
void draw_capsule_solid(Canvas *c, Vec2 a, Vec2 b, float ra, float rb, const float rgb[3]);
void draw_disc_solid(Canvas *c, Vec2 centre, float r, const float rgb[3]);

/* Quantise to bytes (round to nearest, clamped). */
static inline unsigned char to_byte(float v) {
    v = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
    return (unsigned char)(v * 255.f + 0.5f);
}

/* Painting the dancer: capsules for limbs, rounded quads for torso and hips,
 * ellipses for the head, drawn far-to-near so a turned body hides its far arm. */
#include "data/figure.h"
#include <math.h>

typedef struct {
    int kind;
    float a[3], b[3];
    Vec2 origin, u, v; /* across and along the torso (unit vectors) */
    float period;      /* pixels */
} PatternPaint;

static void pattern_color(const void *paint, float x, float y, float rgb[3]) {
    const PatternPaint *p = paint;
    float dx = x - p->origin.x, dy = y - p->origin.y;
    int iu = (int)floorf((dx * p->u.x + dy * p->u.y) / p->period);
    int iv = (int)floorf((dx * p->v.x + dy * p->v.y) / p->period);
    int pick = 0;
    switch (p->kind) {
    case PATTERN_HSTRIPES: pick = iv & 1; break;
    case PATTERN_VSTRIPES: pick = iu & 1; break;
    case PATTERN_CHECKS: pick = (iu + iv) & 1; break;
    default: break;
    }
    const float *c = pick ? p->b : p->a;
    rgb[0] = c[0], rgb[1] = c[1], rgb[2] = c[2];
}

static Vec2 v2add(Vec2 a, Vec2 b, float s) { return (Vec2){a.x + s * b.x, a.y + s * b.y}; }

static Vec2 unit(Vec2 from, Vec2 to) {
    float dx = to.x - from.x, dy = to.y - from.y, n = sqrtf(dx * dx + dy * dy);
    if (n < 1e-6f) return (Vec2){0, 1};
    return (Vec2){dx / n, dy / n};
}

static void draw_arm(const Figure *f, const FigurePose *p, Canvas *c, int s) {
    float h = f->height_px;
    int sho = s ? J_LSHO : J_RSHO;
    Vec2 a = p->j[sho], e = p->j[sho + 1], w = p->j[sho + 2];
    draw_capsule_solid(c, a, e, f->r_uarm * h, f->r_uarm * 0.9f * h, f->shirt);
    draw_capsule_solid(c, e, w, f->r_farm * h, f->r_farm * 0.85f * h, f->long_sleeves ? f->shirt : f->skin);
    Vec2 hand = v2add(w, unit(e, w), 0.5f * f->r_hand * h);
    draw_disc_solid(c, hand, f->r_hand * h, f->skin);
}

static void draw_leg(const Figure *f, const FigurePose *p, Canvas *c, int s) {
    float h = f->height_px;
    int hip = s ? J_LHIP : J_RHIP;
    Vec2 a = p->j[hip], k = p->j[hip + 1], an = p->j[hip + 2];
    draw_capsule_solid(c, an, p->foot[s], f->r_shin * 0.8f * h, f->r_shin * 0.7f * h, f->shoes);
    draw_capsule_solid(c, k, an, f->r_shin * h, f->r_shin * 0.75f * h, f->long_trousers ? f->trousers : f->skin);
    draw_capsule_solid(c, a, k, f->r_thigh * h, f->r_shin * 1.05f * h, f->trousers);
}

static float limb_depth(const FigurePose *p, int first) {
    return (p->z[first] + p->z[first + 1] + p->z[first + 2]) / 3.0f;
}

static void draw_torso(const Figure *f, const FigurePose *p, Canvas *c) {
    float h = f->height_px;
    Vec2 neck = p->j[J_NECK], axis = unit(neck, p->pelvis), perp = {-axis.y, axis.x};
    /* Hips and waist in trouser colour, then the shirt over them. */
    Vec2 waist = v2add(p->pelvis, axis, -0.06f * h), crotch = v2add(p->pelvis, axis, 0.05f * h);
    Quad hips = {{v2add(waist, perp, -p->torso_bot_hw), v2add(waist, perp, p->torso_bot_hw),
                  v2add(crotch, perp, p->torso_bot_hw), v2add(crotch, perp, -p->torso_bot_hw)},
                 0.3f * f->r_thigh * h};
    SolidPaint tp = {{f->trousers[0], f->trousers[1], f->trousers[2]}};
    draw_quad(c, &hips, solid_color, &tp);

    Vec2 top = v2add(neck, axis, 0.01f * h), bottom = v2add(p->pelvis, axis, -0.03f * h);
    Quad torso = {{v2add(top, perp, -p->torso_top_hw), v2add(top, perp, p->torso_top_hw),
                   v2add(bottom, perp, p->torso_bot_hw), v2add(bottom, perp, -p->torso_bot_hw)},
                  0.5f * f->r_uarm * h};
    PatternPaint pp = {f->pattern, {0}, {0}, top, perp, axis, fmaxf(f->pattern_period * h, 1.3f)};
    for (int k = 0; k < 3; k++) pp.a[k] = f->shirt[k], pp.b[k] = f->shirt2[k];
    draw_quad(c, &torso, pattern_color, &pp);
}

static void draw_head(const Figure *f, const FigurePose *p, Canvas *c) {
    float r = p->head_r_px;
    draw_capsule_solid(c, p->j[J_NECK], p->head, f->r_neck * f->height_px, f->r_neck * f->height_px, f->skin);
    SolidPaint hair = {{f->hair[0], f->hair[1], f->hair[2]}}, skin = {{f->skin[0], f->skin[1], f->skin[2]}};
    Ellipse cap = {{p->head.x, p->head.y - 0.1f * r}, 1.04f * r, 1.0f * r, 0};
    draw_ellipse(c, &cap, solid_color, &hair);
    if (p->facing > -0.2f) { /* the face shows unless we see the back of the head */
        float w = 0.55f + 0.35f * fabsf(p->facing);
        Ellipse face = {{p->head.x + 0.28f * r * p->turn_sin, p->head.y + 0.14f * r}, w * r, 0.86f * r, 0};
        draw_ellipse(c, &face, solid_color, &skin);
    }
    if (p->face_visible && r >= 2.5f) {
        const float dark[3] = {0.08f, 0.06f, 0.06f};
        for (int e = 0; e < 2; e++) draw_disc_solid(c, p->eye[e], fmaxf(0.13f * r, 0.35f), dark);
    }
}

static void draw_long_hair(const Figure *f, const FigurePose *p, Canvas *c) {
    float r = p->head_r_px;
    SolidPaint hair = {{f->hair[0], f->hair[1], f->hair[2]}};
    Ellipse back = {{p->head.x, p->head.y + 0.55f * r}, 1.1f * r, 1.45f * r, 0};
    draw_ellipse(c, &back, solid_color, &hair);
}

void figure_draw(const Figure *f, const FigurePose *p, Canvas *c) {
    float arm_z[2] = {limb_depth(p, J_RSHO), limb_depth(p, J_LSHO)};
    float leg_z[2] = {limb_depth(p, J_RHIP), limb_depth(p, J_LHIP)};
    int far_arm = arm_z[0] < arm_z[1] ? 0 : 1, far_leg = leg_z[0] < leg_z[1] ? 0 : 1;
    const float behind = -0.02f; /* arms further back than this go behind the torso */
    int arm_order[2] = {far_arm, 1 - far_arm};
    for (int k = 0; k < 2; k++)
        if (arm_z[arm_order[k]] < behind) draw_arm(f, p, c, arm_order[k]);
    if (f->long_hair && p->facing > 0) draw_long_hair(f, p, c);
    draw_leg(f, p, c, far_leg);
    draw_leg(f, p, c, 1 - far_leg);
    draw_torso(f, p, c);
    if (f->long_hair && p->facing <= 0) draw_long_hair(f, p, c);
    draw_head(f, p, c);
    for (int k = 0; k < 2; k++)
        if (arm_z[arm_order[k]] >= behind) draw_arm(f, p, c, arm_order[k]);
}

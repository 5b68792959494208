/* The dancer's look (proportions, clothes) and motion (kinematics). */
#include "data/figure.h"
#include <math.h>

#define PI_F 3.14159265358979f

static float unif(Rng *r, float a, float b) { return a + (b - a) * rng_uniform(r); }

void hsv_to_rgb(float h, float s, float v, float rgb[3]) {
    h = (h - floorf(h)) * 6.0f;
    int i = (int)h;
    float f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float r, g, b;
    switch (i % 6) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    rgb[0] = r, rgb[1] = g, rgb[2] = b;
}

float luminance(const float c[3]) { return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2]; }

static float color_dist(const float a[3], const float b[3]) {
    float d = 0;
    for (int k = 0; k < 3; k++) d += (a[k] - b[k]) * (a[k] - b[k]);
    return sqrtf(d);
}

static void set3(float dst[3], float r, float g, float b) { dst[0] = r, dst[1] = g, dst[2] = b; }

static void jitter(float c[3], Rng *r, float amount) {
    for (int k = 0; k < 3; k++) {
        c[k] += unif(r, -amount, amount);
        c[k] = c[k] < 0 ? 0 : (c[k] > 1 ? 1 : c[k]);
    }
}

/* ---- appearance ---- */

static void sample_proportions(Figure *f, Rng *r) {
    float build = unif(r, 0.85f, 1.25f); /* slim .. sturdy */
    f->head_r = unif(r, 0.066f, 0.078f);
    f->neck_len = unif(r, 0.025f, 0.040f);
    f->torso_len = unif(r, 0.27f, 0.31f);
    f->sho_hw = unif(r, 0.085f, 0.115f) * sqrtf(build);
    f->hip_hw = unif(r, 0.055f, 0.075f) * sqrtf(build);
    f->depth_hw = f->sho_hw * unif(r, 0.45f, 0.6f);
    f->uarm = unif(r, 0.15f, 0.17f);
    f->farm = unif(r, 0.14f, 0.16f);
    f->thigh = unif(r, 0.22f, 0.25f);
    f->shin = unif(r, 0.21f, 0.24f);
    f->foot = unif(r, 0.06f, 0.075f);
    /* Limbs a little chunkier than life so they survive 16x16 frames. */
    f->r_uarm = 0.040f * build;
    f->r_farm = 0.033f * build;
    f->r_hand = 0.036f * build;
    f->r_thigh = 0.056f * build;
    f->r_shin = 0.043f * build;
    f->r_neck = 0.024f * build;
    f->elbow_mix = unif(r, 0.35f, 0.9f);
}

static const float HAIR[6][3] = {
    {0.07f, 0.06f, 0.05f}, {0.24f, 0.14f, 0.07f}, {0.45f, 0.28f, 0.12f},
    {0.86f, 0.72f, 0.42f}, {0.62f, 0.22f, 0.08f}, {0.62f, 0.62f, 0.60f},
};
static const float TROUSERS[5][3] = {
    {0.18f, 0.27f, 0.52f}, {0.10f, 0.10f, 0.12f}, {0.70f, 0.62f, 0.44f},
    {0.45f, 0.46f, 0.48f}, {0.30f, 0.22f, 0.15f},
};

/* Clothes must stand out from the backdrop and from each other, or the
 * figure melts into the scene at 16x16: redraw (deterministically) until so. */
static void sample_colors(Figure *f, Rng *r, const float bg[3]) {
    float t = unif(r, 0, 1);
    set3(f->skin, 0.96f - 0.62f * t, 0.80f - 0.58f * t, 0.67f - 0.52f * t);
    jitter(f->skin, r, 0.03f);
    const float *h = HAIR[rng_below(r, 6)];
    set3(f->hair, h[0], h[1], h[2]);
    for (int tries = 0; tries < 32; tries++) {
        hsv_to_rgb(unif(r, 0, 1), unif(r, 0.45f, 0.95f), unif(r, 0.35f, 1.0f), f->shirt);
        if (fabsf(luminance(f->shirt) - luminance(bg)) > 0.22f || color_dist(f->shirt, bg) > 0.55f) break;
    }
    if (rng_below(r, 2)) { /* white or black detail, whichever contrasts */
        float v = luminance(f->shirt) > 0.5f ? 0.08f : 0.95f;
        set3(f->shirt2, v, v, v);
    } else { /* another colour, its lightness pushed away from the shirt's */
        float hue = unif(r, 0.25f, 0.75f);
        hsv_to_rgb(hue, unif(r, 0.4f, 0.9f), luminance(f->shirt) > 0.5f ? unif(r, 0.15f, 0.4f) : unif(r, 0.75f, 1.0f), f->shirt2);
    }
    for (int tries = 0; tries < 32; tries++) {
        if (rng_below(r, 3)) {
            const float *c = TROUSERS[rng_below(r, 5)];
            set3(f->trousers, c[0], c[1], c[2]);
            jitter(f->trousers, r, 0.04f);
        } else {
            hsv_to_rgb(unif(r, 0, 1), unif(r, 0.2f, 0.8f), unif(r, 0.15f, 0.9f), f->trousers);
        }
        if (color_dist(f->trousers, f->shirt) > 0.3f && color_dist(f->trousers, bg) > 0.3f) break;
    }
    float s = rng_below(r, 3) ? unif(r, 0.05f, 0.2f) : unif(r, 0.85f, 0.97f);
    set3(f->shoes, s, s, s);
    f->pattern = (int)rng_below(r, PATTERN_KINDS);
    f->pattern_period = unif(r, 0.035f, 0.06f);
    f->long_sleeves = rng_below(r, 2);
    f->long_trousers = rng_below(r, 4) != 0;
    f->long_hair = rng_below(r, 3) == 0;
}

/* ---- motion ---- */

static void wave(Wave *w, Rng *r, float base, float amp0, float amp1) {
    static const float SLOW_OR_FAST[2] = {0.5f, 2.0f};
    w->base = base;
    w->amp[0] = amp0;
    w->amp[1] = amp1;
    w->mult[0] = 1.0f; /* the main beat */
    w->mult[1] = SLOW_OR_FAST[rng_below(r, 2)];
    w->phase[0] = unif(r, 0, 2 * PI_F);
    w->phase[1] = unif(r, 0, 2 * PI_F);
}

static float wave_at(const Wave *w, float t, float beat) {
    float v = w->base;
    for (int k = 0; k < 2; k++) v += w->amp[k] * sinf(2 * PI_F * w->mult[k] * t / beat + w->phase[k]);
    return v;
}

/* The left side copies the right (mirror dance), runs half a beat behind
 * (alternating), or has its own moves. */
static void pair_left(Wave *right, Wave *left, int mode) {
    if (mode == 0) return;
    *left = *right;
    if (mode == 2)
        for (int k = 0; k < 2; k++) left->phase[k] += PI_F;
}

static void sample_motion(Figure *f, Rng *r, int W) {
    f->beat = unif(r, 8.0f, 20.0f);
    f->t0 = unif(r, 0.0f, 200.0f);
    Wave *d = f->dof;
    for (int side = 0; side < 2; side++) {
        wave(&d[DOF_ARM_ABD + side], r, unif(r, 0.2f, 1.0f), unif(r, 0.3f, 1.1f), unif(r, 0.0f, 0.4f));
        wave(&d[DOF_ARM_FLEX + side], r, unif(r, -0.2f, 0.5f), unif(r, 0.0f, 0.8f), unif(r, 0.0f, 0.3f));
        wave(&d[DOF_ELBOW + side], r, unif(r, 0.2f, 1.0f), unif(r, 0.2f, 0.9f), unif(r, 0.0f, 0.3f));
        wave(&d[DOF_HIP_ABD + side], r, unif(r, 0.03f, 0.2f), unif(r, 0.0f, 0.2f), 0.0f);
        wave(&d[DOF_HIP_FLEX + side], r, unif(r, -0.05f, 0.15f), unif(r, 0.05f, 0.5f), unif(r, 0.0f, 0.15f));
        wave(&d[DOF_KNEE + side], r, unif(r, 0.0f, 0.3f), unif(r, 0.1f, 0.7f), 0.0f);
    }
    int arms = (int)rng_below(r, 3), legs = rng_below(r, 5) < 3 ? 2 : (int)rng_below(r, 2);
    pair_left(&d[DOF_ARM_ABD], &d[DOF_ARM_ABD_L], arms);
    pair_left(&d[DOF_ARM_FLEX], &d[DOF_ARM_FLEX_L], arms);
    pair_left(&d[DOF_ELBOW], &d[DOF_ELBOW_L], arms);
    pair_left(&d[DOF_HIP_FLEX], &d[DOF_HIP_FLEX_L], legs);
    pair_left(&d[DOF_KNEE], &d[DOF_KNEE_L], legs);
    wave(&d[DOF_LEAN_SIDE], r, 0.0f, unif(r, 0.0f, 0.12f), unif(r, 0.0f, 0.05f));
    wave(&d[DOF_LEAN_FWD], r, unif(r, -0.05f, 0.1f), unif(r, 0.0f, 0.1f), 0.0f);
    wave(&d[DOF_HEAD_TILT], r, 0.0f, unif(r, 0.0f, 0.2f), 0.0f);
    /* Mostly facing the camera, sometimes side-on or from behind, turning back and forth. */
    unsigned view = rng_below(r, 20);
    float turn = view < 12 ? unif(r, -0.5f, 0.5f) : view < 17 ? (rng_below(r, 2) ? 1 : -1) * unif(r, 0.8f, 1.5f) : PI_F + unif(r, -0.5f, 0.5f);
    wave(&d[DOF_TURN], r, turn, unif(r, 0.0f, 0.9f), 0.0f);
    d[DOF_TURN].mult[0] = 0.5f; /* turns are slower than the beat */
    wave(&d[DOF_SWAY], r, 0.0f, W * unif(r, 0.0f, 0.07f), 0.0f); /* pixels */
    d[DOF_SWAY].mult[0] = 0.5f;
    wave(&d[DOF_JUMP], r, 0.0f, rng_below(r, 10) < 3 ? unif(r, 0.02f, 0.06f) : 0.0f, 0.0f);
}

void figure_sample(Figure *f, Rng *r, int W, int H, float ground_y, const float bg_mean[3]) {
    sample_proportions(f, r);
    sample_colors(f, r, bg_mean);
    f->height_px = H * unif(r, 0.72f, 0.85f);
    f->ground_y = ground_y;
    f->centre_x = W * (0.5f + unif(r, -0.07f, 0.07f));
    sample_motion(f, r, W);
}

/* ---- kinematics ---- */

typedef struct { float x, y, z; } V3;

static V3 v3(float x, float y, float z) { return (V3){x, y, z}; }
static V3 add(V3 a, V3 b) { return v3(a.x + b.x, a.y + b.y, a.z + b.z); }
static V3 mul(V3 a, float s) { return v3(a.x * s, a.y * s, a.z * s); }

/* Direction of a limb hanging down, raised sideways by `abd` toward `side`
 * (+1 = person's left, i.e. +x) and forward by `flex` (radians). */
static V3 limb_dir(float abd, float flex, float side) {
    return v3(side * sinf(abd) * cosf(flex), cosf(abd) * cosf(flex), sinf(flex));
}

/* Upper-body lean: sideways about z, then forward about x. */
static V3 lean(V3 v, float side, float fwd) {
    float cs = cosf(side), sn = sinf(side), cf = cosf(fwd), sf = sinf(fwd);
    V3 a = v3(v.x * cs - v.y * sn, v.x * sn + v.y * cs, v.z);
    return v3(a.x, a.y * cf - a.z * sf, a.y * sf + a.z * cf);
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void figure_pose(const Figure *f, float frame, FigurePose *p) {
    float t = frame + f->t0, A[FIG_NDOF];
    for (int k = 0; k < FIG_NDOF; k++) A[k] = wave_at(&f->dof[k], t, f->beat);
    float ls = A[DOF_LEAN_SIDE], lf = A[DOF_LEAN_FWD], tilt = A[DOF_HEAD_TILT];

    /* Body-frame points, origin at the pelvis. */
    V3 pts[FIG_NJOINTS], head, toe[2], eye[2];
    V3 neck = lean(v3(0, -f->torso_len, 0), ls, lf);
    pts[J_NECK] = neck;
    V3 head_off = lean(lean(v3(0, -(f->neck_len + f->head_r), 0), tilt, 0), ls, lf);
    head = add(neck, head_off);
    V3 nose = lean(lean(v3(0, 0.15f * f->head_r, 0.95f * f->head_r), tilt, 0), ls, lf);
    pts[J_NOSE] = add(head, nose);
    for (int e = 0; e < 2; e++) {
        V3 o = lean(lean(v3((e ? 0.36f : -0.36f) * f->head_r, -0.12f * f->head_r, 0.9f * f->head_r), tilt, 0), ls, lf);
        eye[e] = add(head, o);
    }
    for (int s = 0; s < 2; s++) { /* s = 0 right, 1 left */
        float side = s ? 1.0f : -1.0f;
        int sho = s ? J_LSHO : J_RSHO, hip = s ? J_LHIP : J_RHIP;
        float abd = clampf(A[DOF_ARM_ABD + s], 0.08f, 2.9f), flex = clampf(A[DOF_ARM_FLEX + s], -0.6f, 2.0f);
        float elbow = clampf(A[DOF_ELBOW + s], 0.0f, 2.3f);
        pts[sho] = add(neck, lean(v3(side * f->sho_hw, 0.02f, 0), ls, lf));
        pts[sho + 1] = add(pts[sho], mul(lean(limb_dir(abd, flex, side), ls, lf), f->uarm));
        V3 fore = limb_dir(abd + f->elbow_mix * elbow, flex + (1 - f->elbow_mix) * elbow, side);
        pts[sho + 2] = add(pts[sho + 1], mul(lean(fore, ls, lf), f->farm));

        float habd = clampf(A[DOF_HIP_ABD + s], -0.05f, 0.6f), hflex = clampf(A[DOF_HIP_FLEX + s], -0.5f, 1.2f);
        float knee = clampf(A[DOF_KNEE + s], 0.0f, 1.5f);
        pts[hip] = v3(side * f->hip_hw, 0, 0);
        pts[hip + 1] = add(pts[hip], mul(limb_dir(habd, hflex, side), f->thigh));
        pts[hip + 2] = add(pts[hip + 1], mul(limb_dir(habd, hflex - knee, side), f->shin));
        toe[s] = add(pts[hip + 2], v3(0, 0.02f, f->foot));
    }

    /* Turn about the vertical axis, then stand the lower foot on the ground. */
    float psi = A[DOF_TURN], c = cosf(psi), sn = sinf(psi);
#define TURN(v) ((v) = v3((v).x * c + (v).z * sn, (v).y, -(v).x * sn + (v).z * c))
    for (int k = 0; k < FIG_NJOINTS; k++) TURN(pts[k]);
    TURN(head);
    for (int s = 0; s < 2; s++) { TURN(toe[s]); TURN(eye[s]); }
#undef TURN
    float sole = fmaxf(pts[J_RANK].y, pts[J_LANK].y) + 0.025f;
    float h = f->height_px;
    float jump = fmaxf(0.0f, A[DOF_JUMP]) * h;
    p->pelvis = (Vec2){f->centre_x + A[DOF_SWAY], f->ground_y - h * sole - jump};
#define PROJ(v) ((Vec2){p->pelvis.x + h * (v).x, p->pelvis.y + h * (v).y})
    for (int k = 0; k < FIG_NJOINTS; k++) {
        p->j[k] = PROJ(pts[k]);
        p->z[k] = pts[k].z;
    }
    p->head = PROJ(head);
    for (int s = 0; s < 2; s++) {
        p->foot[s] = PROJ(toe[s]);
        p->eye[s] = PROJ(eye[s]);
    }
#undef PROJ
    p->head_r_px = f->head_r * h;
    p->facing = c;
    p->turn_sin = sn;
    p->face_visible = c > 0.25f;
    p->torso_top_hw = h * (f->sho_hw * fabsf(c) + f->depth_hw * fabsf(sn));
    p->torso_bot_hw = h * (f->hip_hw * 1.15f * fabsf(c) + f->depth_hw * 0.9f * fabsf(sn));
}

/* OpenPose-style pose maps: one colour per limb on black, joints as dots. */
#include <stddef.h>
#include "data/figure.h"
#include <math.h>

const int skeleton_limbs[FIG_NLIMBS][2] = {
    {J_NECK, J_RSHO}, {J_NECK, J_LSHO}, {J_RSHO, J_RELB}, {J_RELB, J_RWRI},
    {J_LSHO, J_LELB}, {J_LELB, J_LWRI}, {J_NECK, J_RHIP}, {J_RHIP, J_RKNE},
    {J_RKNE, J_RANK}, {J_NECK, J_LHIP}, {J_LHIP, J_LKNE}, {J_LKNE, J_LANK},
    {J_NECK, J_NOSE},
};

/* Hues spread round the wheel so left and right limbs get different colours,
 * which is what tells the model which way the body faces. */
void skeleton_limb_color(int limb, float rgb[3]) { hsv_to_rgb((float)limb / FIG_NLIMBS, 1.0f, 1.0f, rgb); }

static void joint_color(int joint, float rgb[3]) { hsv_to_rgb((float)joint / FIG_NJOINTS, 1.0f, 1.0f, rgb); }

void skeleton_draw(const FigurePose *p, float scale, Canvas *c) { skeleton_draw_joints(p->j, NULL, scale, c); }

void skeleton_draw_joints(const Vec2 j[FIG_NJOINTS], const unsigned char *seen, float scale, Canvas *c) {
    /* About 1.5 px wide lines on small maps, growing with big ones. */
    int side = c->w < c->h ? c->w : c->h;
    float r = fmaxf(0.75f, 0.011f * side), dot = 1.5f * r;
    Vec2 q[FIG_NJOINTS];
    for (int k = 0; k < FIG_NJOINTS; k++) q[k] = (Vec2){j[k].x * scale, j[k].y * scale};
    for (int l = 0; l < FIG_NLIMBS; l++) {
        int a = skeleton_limbs[l][0], b = skeleton_limbs[l][1];
        if (seen && (!seen[a] || !seen[b])) continue; /* a limb needs both ends */
        float rgb[3];
        skeleton_limb_color(l, rgb);
        draw_capsule_solid(c, q[a], q[b], r, r, rgb);
    }
    for (int k = 0; k < FIG_NJOINTS; k++) {
        if (seen && !seen[k]) continue;
        float rgb[3];
        joint_color(k, rgb);
        draw_disc_solid(c, q[k], dot, rgb);
    }
}

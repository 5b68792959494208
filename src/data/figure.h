/* The synthetic dancer: an articulated figure with per-video proportions,
 * clothes and a periodic "dance" (figure.c), painted onto a frame
 * (figure_draw.c) and drawn as an OpenPose-style skeleton (skeleton.c).
 *
 * The body lives in a small 3-D frame (x to the person's left, y down, z
 * toward the camera when facing it), is turned about the vertical axis and
 * projected orthographically, so turning the body narrows the shoulders and
 * moves the far arm behind the torso. Lengths are in units of the figure's
 * standing height; projected positions are in latent pixels. */
#pragma once
#include "media/raster.h"
#include "core/rng.h"

/* Keypoints in OpenPose (COCO-18) order, without eyes and ears. R/L are the
 * person's right and left. */
enum {
    J_NOSE, J_NECK,
    J_RSHO, J_RELB, J_RWRI, J_LSHO, J_LELB, J_LWRI,
    J_RHIP, J_RKNE, J_RANK, J_LHIP, J_LKNE, J_LANK,
    FIG_NJOINTS
};
#define FIG_NLIMBS 13

/* One joint angle over time: base + sum of two sinusoids whose periods are
 * the video's beat divided by `mult`. */
typedef struct { float base, amp[2], mult[2], phase[2]; } Wave;

enum { /* degrees of freedom, index 0 = right side, 1 = left side */
    DOF_ARM_ABD, DOF_ARM_ABD_L, DOF_ARM_FLEX, DOF_ARM_FLEX_L, DOF_ELBOW, DOF_ELBOW_L,
    DOF_HIP_ABD, DOF_HIP_ABD_L, DOF_HIP_FLEX, DOF_HIP_FLEX_L, DOF_KNEE, DOF_KNEE_L,
    DOF_LEAN_SIDE, DOF_LEAN_FWD, DOF_HEAD_TILT, DOF_TURN, DOF_SWAY, DOF_JUMP,
    FIG_NDOF
};

enum { PATTERN_PLAIN, PATTERN_HSTRIPES, PATTERN_VSTRIPES, PATTERN_CHECKS, PATTERN_KINDS };

typedef struct {
    /* proportions (units of standing height) */
    float head_r, neck_len, torso_len, sho_hw, hip_hw, depth_hw;
    float uarm, farm, thigh, shin, foot;
    float r_uarm, r_farm, r_hand, r_thigh, r_shin, r_neck;
    float elbow_mix; /* how much of the elbow bend shows in the picture plane */
    /* placement (latent pixels) */
    float height_px, ground_y, centre_x;
    /* clothes and body colours, RGB in [0,1] */
    float skin[3], hair[3], shirt[3], shirt2[3], trousers[3], shoes[3];
    int pattern;
    float pattern_period; /* in units of height */
    int long_sleeves, long_trousers, long_hair;
    /* motion */
    float beat;  /* frames per beat */
    float t0;    /* time offset, frames */
    Wave dof[FIG_NDOF];
} Figure;

/* One frame's projected figure. */
typedef struct {
    Vec2 j[FIG_NJOINTS];  /* keypoints, latent pixels */
    float z[FIG_NJOINTS]; /* depth toward the camera, units of height */
    Vec2 head, pelvis;
    float head_r_px;
    Vec2 foot[2];         /* toe tips, right then left */
    Vec2 eye[2];
    int face_visible;     /* 1 when the face is turned toward the camera */
    float facing;         /* cos(turn): 1 facing the camera, -1 its back */
    float turn_sin;       /* sin(turn): which side the face points to */
    float torso_top_hw, torso_bot_hw; /* projected half-widths, latent pixels */
} FigurePose;

/* Draw a figure's look and dance; `bg_mean` is the backdrop's average colour,
 * used to keep the clothes visible against it. */
void figure_sample(Figure *f, Rng *r, int W, int H, float ground_y, const float bg_mean[3]);
void figure_pose(const Figure *f, float frame, FigurePose *p);

void figure_draw(const Figure *f, const FigurePose *p, Canvas *c);

/* OpenPose-style skeleton on an already cleared canvas; `scale` maps latent
 * pixels to the canvas (the pose map is s times bigger). */
void skeleton_draw(const FigurePose *p, float scale, Canvas *c);
/* The same from bare joints (latent pixels); seen[k] == 0 leaves joint k and
 * its limbs out (seen NULL: all drawn). The importer draws real poses with it. */
void skeleton_draw_joints(const Vec2 j[FIG_NJOINTS], const unsigned char *seen, float scale, Canvas *c);
/* Limb list and colours (for tests and for documentation). */
extern const int skeleton_limbs[FIG_NLIMBS][2];
void skeleton_limb_color(int limb, float rgb[3]);

/* Colour helpers shared by the generator pieces. */
void hsv_to_rgb(float h, float s, float v, float rgb[3]);
float luminance(const float rgb[3]);

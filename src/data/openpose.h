/* Per-frame body poses in OpenPose's JSON format (what OpenPose, DWPose and
 * the TikTok-dataset tooling write): {"people": [{"pose_keypoints_2d":
 * [x0, y0, c0, x1, y1, c1, ...]}, ...]}, with 18 (COCO) or 25 (BODY_25)
 * keypoints. The 14 body joints of figure.h are taken from either. */
#pragma once
#include "data/figure.h"
#include <stddef.h>

typedef struct {
    double x[FIG_NJOINTS], y[FIG_NJOINTS]; /* as stored (OpenPose puts pixel centres at integers) */
    float conf[FIG_NJOINTS];              /* 0 where the joint was not found */
    int people;                           /* persons in the file; the most confident one is kept */
} BodyPose;

/* Reads one file. 0, or -1 with the reason (naming the file) in err. A file
 * with no person gives people = 0 and all confidences 0. */
int openpose_read(const char *path, BodyPose *out, char *err, size_t errn);

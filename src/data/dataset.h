/* Training-data loader for the dataset files of docs/formats.md: reads only the
 * hyperslabs a sample needs, so datasets larger than memory train. Each rank
 * opens its own read-only handle (no MPI-IO). */
#pragma once
#include "core/rng.h"
#include "model/shape.h"

typedef struct Dataset Dataset;

/* Validates layout, dtypes and shapes against the model; dies naming the
 * file and the problem. frame_stride >= 1 is the step between clip frames. */
Dataset *dataset_open(const char *path, const ModelShape *m, int frame_stride);
int dataset_videos(const Dataset *ds);
int dataset_frames(const Dataset *ds);
int dataset_stride(const Dataset *ds);
const char *dataset_path(const Dataset *ds);

/* Frames start, start + stride, ... (F of them) of one video:
 * x0 [F,C,H,W] latents as float32; pose [F,Cp,sH,sW] in [0,1]. */
void dataset_read_clip(Dataset *ds, int video, int start, int F, float *x0, float *pose);
/* One latent frame [C,H,W] (the reference). */
void dataset_read_frame(Dataset *ds, int video, int frame, float *ref);

/* Draw a training sample: a random video, a random clip start for F frames
 * at the dataset's stride, and a reference frame of the same video, outside
 * the clip's span when the video is long enough. */
void dataset_pick(const Dataset *ds, Rng *r, int F, int *video, int *start, int *ref_frame);
/* dataset_pick draws only videos first .. first + n - 1 from here on (a
 * split held out of another, e.g. Ent-Prog's probe set); and how many it draws from. */
void dataset_restrict(Dataset *ds, int first, int n);
int dataset_drawn_videos(const Dataset *ds);

void dataset_close(Dataset *ds);

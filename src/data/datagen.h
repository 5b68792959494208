/* The synthetic human-video dataset: a dancing articulated figure in front of
 * a textured wall, with its OpenPose-style skeleton, in pixel-space latents.
 * docs/formats.md "Dataset" describes the files. */
#pragma once
#include <stdint.h>
#include "deck/deck.h"
#include "core/rng.h"

enum { SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, SPLIT_COUNT };
extern const char *const datagen_split_names[SPLIT_COUNT]; /* "train", "val", "test" */

/* The random stream of one video. It depends only on (seed, split, index),
 * so a video is the same whatever the number of videos generated. */
void datagen_video_rng(Rng *r, uint64_t seed, int split, int index);

/* Render video `index` of `split` with T frames at the model's latent size:
 * frames [T,3,H,W] and pose [T,3,sH,sW] as bytes, keypoints [T,FIG_NJOINTS,2]
 * (x, y in latent pixels; may be NULL). */
void datagen_render_video(const ModelShape *m, int T, uint64_t seed, int split, int index,
                          uint8_t *frames, uint8_t *pose, float *keypoints);

/* Write <data.dir>/{train,val,test}.h5 and preview.png (rank 0 writes; all
 * ranks return together). A relative data.dir is relative to the working
 * directory. Splits with 0 videos are not written. */
void datagen_run(const Deck *d);

/* Only the preview picture (used by datagen_run): a few frames of the first
 * training videos above their pose maps and an overlay of both. */
void datagen_preview(const ModelShape *m, int T, uint64_t seed, int n_videos, const char *path);

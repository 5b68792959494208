/* Pose-guided video generation from a checkpoint (`entprog sample`,
 * docs/sampling.md): sample i animates video i of a dataset file from its
 * frame 0 (the reference) and the pose maps of its first F clip frames,
 * starting from seeded noise, with DDIM and classifier-free guidance. */
#pragma once
#include <mpi.h>
#include <stdint.h>
#include "data/dataset.h"
#include "sample/ddim.h"
#include "model/model.h"
#include "model/vae.h"

/* Sample i draws x_T (and eta's noise) from rng_seed_stream(seed, SAMPLE_STREAM_BASE + i):
 * its result depends neither on the batch size nor on the number of ranks' split. */
#define SAMPLE_STREAM_BASE (1ull << 40)
#define SAMPLE_REF_FRAME 0

/* Pictures: every frame is upscaled with nearest neighbour by an integer zoom
 * so its shorter side is at least this many pixels. */
#define SAMPLE_GIF_MIN_PX 128
#define SAMPLE_GRID_MIN_PX 64
#define SAMPLE_GRID_GAP 2   /* pixels between and around the grid's cells */
#define SAMPLE_GRID_BG 32   /* grey level of the gaps */

typedef struct {
    int N, F, C, H, W, Cp, sH, sW;
    int PH, PW;               /* the frame pictures' size: H, W, or the VAE's f*H, f*W (sample_decode_frames) */
    float *generated;         /* [N,F,C,H,W] */
    float *truth;             /* [N,F,C,H,W] the clip's latents */
    float *reference;         /* [N,C,H,W] frame SAMPLE_REF_FRAME's latent */
    uint8_t *pose;            /* [N,F,Cp,sH,sW] pose maps as bytes, round(255 p) */
    uint8_t *gen_frames, *truth_frames; /* [N,F,3,PH,PW] via sample_latent_rgb */
    uint8_t *ref_frames;      /* [N,3,PH,PW] */
    uint8_t *pose_frames;     /* [N,F,3,sH,sW] via sample_pose_rgb */
} SampleSet;

void sample_set_alloc(SampleSet *s, const ModelShape *shape, int N);
void sample_set_free(SampleSet *s);

/* Generates every sample. With R ranks in comm, rank r takes samples r, r+R,
 * ... in batches of m->B; on return rank 0 holds all of s->generated (others
 * hold only their own rows). Progress lines on rank 0. */
void sample_generate(Model *m, Dataset *ds, const DdimConfig *c, uint64_t seed, SampleSet *s, MPI_Comm comm);

/* Reads the conditioning and ground truth of every sample and makes the
 * 8-bit pictures of generated, truth, reference and pose (rank 0's job). */
void sample_read_truth(Dataset *ds, SampleSet *s);
void sample_make_frames(SampleSet *s);
/* For a latent-space model (the deck's data.vae): after sample_make_frames,
 * the generated, ground-truth and reference pictures again, from their
 * latents decoded by the VAE one frame at a time, at PH x PW = f*H x f*W. */
void sample_decode_frames(SampleSet *s, const Vae *vae);

/* A latent frame [C,H,W] as planar RGB bytes [3,H,W]: channels 0..2 through
 * clamp(round((x + 1) * 127.5)), which decodes pixel-space latents; C < 3
 * shows channel 0 as grey. */
void sample_latent_rgb(const float *x, int C, int H, int W, uint8_t *rgb);
/* Pose bytes [Cp,sH,sW] as planar RGB [3,sH,sW]: channels 0..2, or channel 0 as grey when Cp < 3. */
void sample_pose_rgb(const uint8_t *pose, int Cp, int sH, int sW, uint8_t *rgb);

/* Smallest integer zoom >= 1 that makes min(H, W) * zoom >= min_px. */
int sample_zoom(int H, int W, int min_px);

/* grid.png: row i = sample i; columns reference | F pose maps | F generated
 * frames | F ground-truth frames; cells of (H*z) x (W*z), z = sample_zoom(H,
 * W, SAMPLE_GRID_MIN_PX), pose maps resampled to the cell with nearest
 * neighbour, SAMPLE_GRID_GAP pixels of grey SAMPLE_GRID_BG around each cell. */
void sample_write_grid(const char *path, const SampleSet *s);
/* GIF of sample i's generated frames, zoom sample_zoom(H, W, SAMPLE_GIF_MIN_PX), looping. */
void sample_write_gif(const char *path, const SampleSet *s, int i, double fps);
/* Sample i's generated frames as an H.264 MP4, zoomed as the GIF. */
void sample_write_mp4(const char *path, const SampleSet *s, int i, double fps);
/* Sample i as an H.264 MP4 of cells side by side, as a row of grid.png over
 * time: reference | pose map | generated | ground truth. */
void sample_write_side_by_side(const char *path, const SampleSet *s, int i, double fps);

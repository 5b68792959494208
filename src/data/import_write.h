/* The split files `entprog import-video` writes: the dataset of
 * docs/formats.md (/latents, /pose, /frames as datagen writes them) plus
 * what says where each clip came from. Files grow one clip at a time along N,
 * so an import never holds more than one clip in memory. */
#pragma once
#include "model/shape.h"
#include "data/figure.h"
#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#define IMPORT_NAME_MAX 256 /* bytes of /source_video per clip, NUL included */

/* One clip of T frames. */
typedef struct {
    uint8_t *frames;    /* [T,3,H,W] */
    uint8_t *pose;      /* [T,3,sH,sW] */
    float *keypoints;   /* [T,FIG_NJOINTS,2], latent pixels (unused for pose videos) */
    float *conf;        /* [T,FIG_NJOINTS] (unused for pose videos) */
    int32_t *src_frame; /* [T] source frame index of each frame */
    float crop[4];      /* x0, y0, x1, y1 in source pixels */
    int32_t ref_frame;  /* the clip's reference frame */
    char video[IMPORT_NAME_MAX];
} ImportClip;

void import_clip_alloc(ImportClip *c, const ModelShape *m, int T);
void import_clip_free(ImportClip *c);

typedef struct ImportFile ImportFile;

/* Create `path` with no clips (serial HDF5; comm MPI_COMM_NULL), or, with a
 * communicator, collectively with room for exactly `n` clips. keypoints 0:
 * no /keypoints and /keypoint_conf (poses from pose videos have none). */
ImportFile *import_file_create(const char *path, const ModelShape *m, int T, int keypoints, MPI_Comm comm, long n);
long import_file_count(const ImportFile *f);
void import_file_append(ImportFile *f, const ImportClip *c);
/* Drop clips n.. again (those of a video that turned out bad). */
void import_file_truncate(ImportFile *f, long n);
/* Clip i of an import file opened with import_file_open_read. */
ImportFile *import_file_open_read(const char *path, const ModelShape *m, int T, int keypoints);
void import_file_read(ImportFile *f, long i, ImportClip *c);
/* Collective: every rank of the file's communicator calls it the same
 * number of times; c NULL writes nothing on this rank. */
void import_file_write_at(ImportFile *f, long i, const ImportClip *c);
void import_file_close(ImportFile *f);
hid_t import_file_handle(const ImportFile *f);

/* One source video through the importer: its pose files, the person's crop,
 * the resampling to the dataset's frame rate, and its clips appended to an
 * import file. Used by import_video.c. */
#pragma once
#include "data/import_write.h"
#include "data/import_video.h"
#include <stddef.h>

typedef struct {
    const ModelShape *m;
    int T;              /* frames per clip (data.frames) */
    double fps;         /* the dataset's frame rate */
    const ImportOptions *o;
} ImportSetup;

typedef struct {
    long src_decoded; /* source frames decoded */
    int clips;        /* clips appended */
} ImportCount;

/* Appends the clips of `video` (file or picture folder; `stem` names its pose
 * folder) to f, with pose maps drawn from the keypoints of <poses>/<stem>/,
 * or, when pose_video is given, cut from that rendered pose video (file or
 * picture folder). On a bad input returns -1 with the reason in err and f as
 * it was before; 0 otherwise. */
int import_one(const ImportSetup *s, const char *video, const char *stem, const char *pose_video, ImportFile *f,
               ImportCount *n, char *err, size_t errn);

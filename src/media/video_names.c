/* Which file names are videos and which pictures (by extension): the same
 * with or without libav (ENTPROG_VIDEO), so a build without it still
 * recognises what it cannot read and says so. */
#include "media/video_read.h"
#include <string.h>
#include <strings.h>

static int has_ext(const char *name, const char *const *exts) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (int i = 0; exts[i]; i++)
        if (!strcasecmp(dot + 1, exts[i])) return 1;
    return 0;
}

int video_is_video_name(const char *name) {
    static const char *const exts[] = {"mp4", "m4v", "webm", "mov", "mkv", "avi", NULL};
    return has_ext(name, exts);
}

int video_is_picture_name(const char *name) {
    static const char *const exts[] = {"png", "jpg", "jpeg", NULL};
    return has_ext(name, exts);
}

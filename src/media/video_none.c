/* The video reader and writer of a build without libav (cmake
 * -DENTPROG_VIDEO=OFF, e.g. the GPU bundle of scripts/gpu_bundle.sh, whose
 * target machine lacks libav's codec libraries): every call that needs
 * libav refuses with the reason. CMake compiles this file instead of
 * video_read.c and video_write.c. */
#include "media/video_read.h"
#include "media/video_write.h"
#include "core/die.h"
#include <stdio.h>

#define NO_LIBAV "this entprog was built without libav (cmake -DENTPROG_VIDEO=OFF); rebuild with ENTPROG_VIDEO=ON"

VideoReader *video_open(const char *path, char *err, size_t errn) {
    snprintf(err, errn, "'%s': cannot read videos or pictures: " NO_LIBAV, path);
    return NULL;
}
int video_width(const VideoReader *v) { (void)v; return 0; }
int video_height(const VideoReader *v) { (void)v; return 0; }
double video_fps(const VideoReader *v) { (void)v; return 0; }
int video_next(VideoReader *v, const uint8_t **rgb, char *err, size_t errn) {
    (void)v, (void)rgb;
    snprintf(err, errn, NO_LIBAV);
    return -1;
}
void video_close(VideoReader *v) { (void)v; }

VideoWriter *video_write_open(const char *path, int w, int h, double fps) {
    (void)w, (void)h, (void)fps;
    ep_die("'%s': cannot write an MP4: " NO_LIBAV, path);
}
void video_write_frame(VideoWriter *v, const uint8_t *rgb) { (void)v, (void)rgb; }
void video_write_close(VideoWriter *v) { (void)v; }

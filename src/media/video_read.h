/* Reading frames from a video file (MP4, WebM, MOV, MKV, ... through
 * libavformat/libavcodec) or from a folder of pictures (PNG, JPEG, sorted by
 * name), one decoded frame at a time, as packed 8-bit RGB. Failures are
 * returned with a message naming the file, never fatal: the importer decides
 * whether a bad video stops it. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct VideoReader VideoReader;

/* A video file, or a folder of .png/.jpg/.jpeg pictures. NULL on failure with
 * the reason in err. */
VideoReader *video_open(const char *path, char *err, size_t errn);
int video_width(const VideoReader *v);
int video_height(const VideoReader *v);
/* The container's average frame rate, or 0 when it has none (a picture folder). */
double video_fps(const VideoReader *v);
/* Next frame: 1 with *rgb pointing at h rows of w RGB triples (valid until
 * the next call), 0 at the end, -1 on a decoding error (err filled). rgb
 * NULL decodes the frame without converting it (a frame that is not kept). */
int video_next(VideoReader *v, const uint8_t **rgb, char *err, size_t errn);
void video_close(VideoReader *v);

/* 1 when the name ends in an extension video_open reads as a video. */
int video_is_video_name(const char *name);
/* 1 when the name ends in .png, .jpg or .jpeg (any case). */
int video_is_picture_name(const char *name);

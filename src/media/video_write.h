/* Writing H.264 MP4 videos (libavcodec's libx264, the mp4 muxer of
 * libavformat), from packed 8-bit RGB frames. Written to <path>.tmp and
 * renamed on close, so a failed run leaves no half video; dies naming the file. */
#pragma once
#include <stdint.h>

typedef struct VideoWriter VideoWriter;

/* w x h frames at fps; odd sizes are padded by one edge column or row
 * (4:2:0 chroma needs even sizes). */
VideoWriter *video_write_open(const char *path, int w, int h, double fps);
/* rgb: h rows of w RGB triples. */
void video_write_frame(VideoWriter *v, const uint8_t *rgb);
void video_write_close(VideoWriter *v);

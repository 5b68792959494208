/* Writing 8-bit RGB pictures (previews) with libpng. */
#pragma once
#include <stdint.h>

/* rgb: h rows of w interleaved RGB pixels. Returns 0, or dies naming the file. */
int png_write_rgb(const char *path, int w, int h, const uint8_t *rgb);

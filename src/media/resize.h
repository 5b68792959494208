/* Cropping and resizing a picture by area averaging: each output pixel is the
 * mean of the source over the rectangle it covers (fractional pixels weighed
 * by their covered area), so downscaling never aliases and a whole-number
 * factor is a plain block mean. Area outside the source counts as black. */
#pragma once
#include <stdint.h>

/* rgb: h rows of w packed RGB triples. The crop [x0, x1) x [y0, y1) is in
 * source pixels (pixel (i, j) spans [j, j+1) x [i, i+1)); out: planar
 * [3][oh][ow] bytes, rounded to nearest. */
void crop_resize_rgb(const uint8_t *rgb, int w, int h, double x0, double y0, double x1, double y1, int ow, int oh,
                     uint8_t *out);

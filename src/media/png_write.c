#include "media/png_write.h"
#include "core/die.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

int png_write_rgb(const char *path, int w, int h, const uint8_t *rgb) {
    if (w <= 0 || h <= 0) ep_die("png '%s': bad size %dx%d", path, w, h);
    FILE *fp = fopen(path, "wb");
    if (!fp) ep_die("cannot create '%s': %s", path, strerror(errno));
    int partial = ep_partial_begin(path); /* removed if writing it fails */
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) ep_die("png '%s': out of memory in libpng", path);
    /* libpng reports errors by longjmp: land here and die with the file name. */
    if (setjmp(png_jmpbuf(png))) ep_die("png '%s': libpng failed while writing (disk full?)", path);
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(fp) != 0) ep_die("cannot finish writing '%s': %s", path, strerror(errno));
    ep_partial_done(partial);
    return 0;
}

/* Animated GIF89a writer: one global 256-entry palette, LZW-compressed frames,
 * a NETSCAPE2.0 block that loops forever. Quantisation uses a fixed 6x7x6
 * colour cube, so any reader can reproduce the palette indices exactly:
 *   ri = (5 r + 127) / 255, gi = (6 g + 127) / 255, bi = (5 b + 127) / 255
 *   index = 42 ri + 6 gi + bi               (integer division; 252 colours)
 *   palette[index] = ((255 ri + 2) / 5, (255 gi + 3) / 6, (255 bi + 2) / 5)
 * Entries 252..255 are black and unused. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GIF_CUBE_R 6
#define GIF_CUBE_G 7
#define GIF_CUBE_B 6

static inline uint8_t gif_cube_index(uint8_t r, uint8_t g, uint8_t b) {
    int ri = (5 * r + 127) / 255, gi = (6 * g + 127) / 255, bi = (5 * b + 127) / 255;
    return (uint8_t)(GIF_CUBE_G * GIF_CUBE_B * ri + GIF_CUBE_B * gi + bi);
}

/* The 6x7x6 cube as 256 RGB triples. */
void gif_cube_palette(uint8_t pal[768]);

typedef struct {
    FILE *fp;
    char *path;
    int w, h;
    int partial; /* core/die.h: removed if writing fails */
} GifWriter;

/* Header, logical screen of w x h, the palette and the looping block; dies naming the file. */
void gif_open(GifWriter *g, const char *path, int w, int h, const uint8_t pal[768]);
/* One full-screen frame of w*h palette indices (row-major), shown for delay_cs hundredths of a second. */
void gif_add_frame(GifWriter *g, const uint8_t *index, int delay_cs);
void gif_close(GifWriter *g);

/* GIF LZW of n 8-bit indices (minimum code size 8), as the sub-blocks that
 * follow the code-size byte, terminator included. Returns a malloc'd buffer and its size. */
uint8_t *gif_lzw(const uint8_t *index, size_t n, size_t *out_size);

/* Frame delay for a frame rate: round(100 / fps) hundredths, at least 2
 * (browsers show smaller delays as 10). */
int gif_delay_cs(double fps);

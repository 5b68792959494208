/* GIF89a writer (gif_write.h). The LZW coder follows the GIF spec: codes
 * 0..255 are the indices, 256 = clear, 257 = end of information; code width
 * starts at 9 bits and grows to 12; when all 4096 codes are taken it emits a
 * clear and starts over (no deferred clear). */
#define _POSIX_C_SOURCE 200809L
#include "media/gif_write.h"
#include "core/die.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LZW_MIN 8
#define LZW_CLEAR (1 << LZW_MIN)
#define LZW_EOI (LZW_CLEAR + 1)
#define LZW_MAX_CODES 4096
#define HASH_BITS 13
#define HASH_SIZE (1 << HASH_BITS)

void gif_cube_palette(uint8_t pal[768]) {
    memset(pal, 0, 768);
    for (int r = 0; r < GIF_CUBE_R; r++)
        for (int g = 0; g < GIF_CUBE_G; g++)
            for (int b = 0; b < GIF_CUBE_B; b++) {
                uint8_t *p = pal + 3 * (GIF_CUBE_G * GIF_CUBE_B * r + GIF_CUBE_B * g + b);
                p[0] = (uint8_t)((255 * r + 2) / 5);
                p[1] = (uint8_t)((255 * g + 3) / 6);
                p[2] = (uint8_t)((255 * b + 2) / 5);
            }
}

int gif_delay_cs(double fps) {
    long d = fps > 0 ? lround(100.0 / fps) : 10;
    return d < 2 ? 2 : d > 65535 ? 65535 : (int)d;
}

/* ---- the code stream: LSB-first bits, then 255-byte sub-blocks ---- */

typedef struct {
    uint8_t *buf;
    size_t n, cap;
    uint32_t acc;
    int bits;
} BitSink;

static void sink_byte(BitSink *s, uint8_t v) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        uint8_t *p = realloc(s->buf, s->cap);
        if (!p) ep_die("out of memory for a GIF code stream (%zu bytes)", s->cap);
        s->buf = p;
    }
    s->buf[s->n++] = v;
}

static void sink_code(BitSink *s, int code, int width) {
    s->acc |= (uint32_t)code << s->bits;
    s->bits += width;
    while (s->bits >= 8) {
        sink_byte(s, (uint8_t)(s->acc & 0xff));
        s->acc >>= 8;
        s->bits -= 8;
    }
}

static void sink_flush(BitSink *s) {
    if (s->bits > 0) sink_byte(s, (uint8_t)(s->acc & 0xff));
    s->acc = 0, s->bits = 0;
}

/* ---- the string table: (prefix code, next index) -> code, open addressing ---- */

typedef struct {
    uint32_t key[HASH_SIZE]; /* prefix * 256 + index + 1; 0 = empty */
    uint16_t code[HASH_SIZE];
    int next;                /* the next free code */
} LzwTable;

static void table_reset(LzwTable *t) {
    memset(t->key, 0, sizeof t->key);
    t->next = LZW_EOI + 1;
}

static int slot_of(const LzwTable *t, uint32_t key) {
    uint32_t h = (key * 2654435761u) >> (32 - HASH_BITS);
    while (t->key[h] && t->key[h] != key) h = (h + 1) & (HASH_SIZE - 1);
    return (int)h;
}

/* The width every decoder reads the next code with: its table lags ours by
 * one entry, so 2^width must reach our next free code. */
static int code_width(int next) {
    int w = LZW_MIN + 1;
    while ((1 << w) < next && w < 12) w++;
    return w;
}

static void lzw_codes(const uint8_t *index, size_t n, BitSink *s) {
    LzwTable *t = ep_malloc(sizeof *t, "GIF LZW table");
    table_reset(t);
    sink_code(s, LZW_CLEAR, code_width(t->next));
    int prefix = n ? index[0] : -1;
    for (size_t i = 1; i < n; i++) {
        uint32_t key = (uint32_t)prefix * 256u + index[i] + 1u;
        int h = slot_of(t, key);
        if (t->key[h]) {
            prefix = t->code[h];
            continue;
        }
        sink_code(s, prefix, code_width(t->next));
        if (t->next < LZW_MAX_CODES) {
            t->key[h] = key;
            t->code[h] = (uint16_t)t->next++;
        } else { /* table full: the decoder adds its last entry on this code, then clears */
            sink_code(s, LZW_CLEAR, 12);
            table_reset(t);
        }
        prefix = index[i];
    }
    if (prefix >= 0) sink_code(s, prefix, code_width(t->next));
    /* the decoder adds an entry for the last code too, which may widen EOI */
    sink_code(s, LZW_EOI, code_width(t->next + (prefix >= 0 && t->next < LZW_MAX_CODES)));
    sink_flush(s);
    free(t);
}

uint8_t *gif_lzw(const uint8_t *index, size_t n, size_t *out_size) {
    BitSink s = {0};
    lzw_codes(index, n, &s);
    size_t blocks = (s.n + 254) / 255;
    uint8_t *out = ep_malloc(s.n + blocks + 1, "GIF image data");
    size_t o = 0;
    for (size_t k = 0; k < s.n; k += 255) {
        size_t len = s.n - k < 255 ? s.n - k : 255;
        out[o++] = (uint8_t)len;
        memcpy(out + o, s.buf + k, len);
        o += len;
    }
    out[o++] = 0; /* block terminator */
    free(s.buf);
    *out_size = o;
    return out;
}

/* ---- the file ---- */

static void put(GifWriter *g, const void *p, size_t n) {
    if (fwrite(p, 1, n, g->fp) != n) ep_die("cannot write GIF '%s': %s", g->path, strerror(errno));
}

static void put_u16(GifWriter *g, int v) {
    uint8_t b[2] = {(uint8_t)(v & 0xff), (uint8_t)((v >> 8) & 0xff)};
    put(g, b, 2);
}

void gif_open(GifWriter *g, const char *path, int w, int h, const uint8_t pal[768]) {
    if (w < 1 || h < 1 || w > 65535 || h > 65535) ep_die("GIF '%s': size %dx%d outside 1..65535", path, w, h);
    g->fp = fopen(path, "wb");
    if (!g->fp) ep_die("cannot create GIF '%s': %s", path, strerror(errno));
    g->partial = ep_partial_begin(path); /* removed if writing it fails */
    g->path = strdup(path);
    g->w = w, g->h = h;
    put(g, "GIF89a", 6);
    put_u16(g, w);
    put_u16(g, h);
    /* global colour table present, 8 bits per primary, 2^(7+1) entries */
    uint8_t screen[3] = {0xF7, 0, 0};
    put(g, screen, 3);
    put(g, pal, 768);
    static const uint8_t loop[19] = {0x21, 0xFF, 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0',
                                     0x03, 0x01, 0x00, 0x00, 0x00}; /* loop count 0 = forever */
    put(g, loop, sizeof loop);
}

void gif_add_frame(GifWriter *g, const uint8_t *index, int delay_cs) {
    /* graphic control: disposal "do not dispose" (1), no transparency */
    uint8_t gce[4] = {0x21, 0xF9, 0x04, 0x04};
    put(g, gce, 4);
    put_u16(g, delay_cs);
    uint8_t gce_end[2] = {0, 0};
    put(g, gce_end, 2);
    uint8_t sep = 0x2C;
    put(g, &sep, 1);
    put_u16(g, 0);
    put_u16(g, 0);
    put_u16(g, g->w);
    put_u16(g, g->h);
    uint8_t packed_min[2] = {0x00, LZW_MIN}; /* no local table, not interlaced; LZW minimum code size */
    put(g, packed_min, 2);
    size_t n;
    uint8_t *data = gif_lzw(index, (size_t)g->w * g->h, &n);
    put(g, data, n);
    free(data);
}

void gif_close(GifWriter *g) {
    uint8_t trailer = 0x3B;
    put(g, &trailer, 1);
    if (fclose(g->fp) != 0) ep_die("cannot finish writing GIF '%s': %s", g->path, strerror(errno));
    ep_partial_done(g->partial);
    free(g->path);
    memset(g, 0, sizeof *g);
}

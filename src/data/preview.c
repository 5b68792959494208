/* preview.png: a strip of frames of the first training videos, their pose
 * maps below, and the two overlaid (to see that they line up). Everything is
 * upscaled with nearest neighbour to cells of about 128 pixels. */
#include "data/datagen.h"
#include "core/die.h"
#include "media/png_write.h"
#include <stdlib.h>

#define PREVIEW_COLS 6
#define PREVIEW_GAP 4

typedef struct {
    uint8_t *rgb; /* interleaved */
    int w, h;
} Picture;

/* Sample of a planar [3][h][w] image at the cell pixel (x, y) of a cw x ch cell. */
static const uint8_t *nearest(const uint8_t *src, int w, int h, int cw, int ch, int x, int y, int *plane) {
    int sx = (int)(((long)x * w) / cw), sy = (int)(((long)y * h) / ch);
    *plane = w * h;
    return src + (long)sy * w + sx;
}

static void blit(Picture *pic, int x0, int y0, int cw, int ch, const uint8_t *frame, int fw, int fh,
                 const uint8_t *pose, int pw, int ph) {
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            uint8_t *dst = pic->rgb + ((long)(y0 + y) * pic->w + x0 + x) * 3;
            int fp = 0, pp = 0;
            const uint8_t *f = frame ? nearest(frame, fw, fh, cw, ch, x, y, &fp) : NULL;
            const uint8_t *p = pose ? nearest(pose, pw, ph, cw, ch, x, y, &pp) : NULL;
            int lit = p && (p[0] > 60 || p[pp] > 60 || p[2 * pp] > 60);
            for (int k = 0; k < 3; k++) {
                if (f && p) dst[k] = lit ? p[k * pp] : (uint8_t)(f[k * fp] * 45 / 100); /* overlay */
                else if (f) dst[k] = f[k * fp];
                else dst[k] = p[k * pp];
            }
        }
}

void datagen_preview(const ModelShape *m, int T, uint64_t seed, int n_videos, const char *path) {
    int H = m->H, W = m->W, sH = m->s * H, sW = m->s * W;
    int zoom = (128 + W - 1) / W, cw = W * zoom, ch = H * zoom;
    int cols = T < PREVIEW_COLS ? T : PREVIEW_COLS, rows = 3 * n_videos;
    Picture pic = {NULL, cols * cw + (cols + 1) * PREVIEW_GAP, rows * ch + (rows + 1) * PREVIEW_GAP + (n_videos - 1) * 2 * PREVIEW_GAP};
    if (n_videos < 1) ep_die("preview '%s': no training videos to show", path);
    pic.rgb = ep_malloc((size_t)pic.w * pic.h * 3, "preview picture");
    for (long i = 0; i < (long)pic.w * pic.h * 3; i++) pic.rgb[i] = 40;
    uint8_t *frames = ep_malloc((size_t)T * 3 * H * W, "preview frames");
    uint8_t *pose = ep_malloc((size_t)T * 3 * sH * sW, "preview pose maps");
    for (int v = 0; v < n_videos; v++) {
        datagen_render_video(m, T, seed, SPLIT_TRAIN, v, frames, pose, NULL);
        int y_top = PREVIEW_GAP + v * (3 * (ch + PREVIEW_GAP) + 2 * PREVIEW_GAP);
        for (int c = 0; c < cols; c++) {
            int t = cols > 1 ? c * (T - 1) / (cols - 1) : 0;
            const uint8_t *fr = frames + (size_t)t * 3 * H * W, *po = pose + (size_t)t * 3 * sH * sW;
            int x = PREVIEW_GAP + c * (cw + PREVIEW_GAP);
            blit(&pic, x, y_top, cw, ch, fr, W, H, NULL, 0, 0);
            blit(&pic, x, y_top + ch + PREVIEW_GAP, cw, ch, NULL, 0, 0, po, sW, sH);
            blit(&pic, x, y_top + 2 * (ch + PREVIEW_GAP), cw, ch, fr, W, H, po, sW, sH);
        }
    }
    png_write_rgb(path, pic.w, pic.h, pic.rgb);
    free(frames);
    free(pose);
    free(pic.rgb);
}

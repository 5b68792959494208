/* Frames in through libavformat (demux), libavcodec (decode) and libswscale
 * (to packed RGB). A picture folder reads each picture as a one-frame
 * "video" through the same path, so PNG and JPEG need nothing else. */
#define _POSIX_C_SOURCE 200809L
#include "media/video_read.h"
#include <dirent.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One open file: demuxer, decoder and the conversion to RGB. */
typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    int stream, draining;
} Decoder;

struct VideoReader {
    char *path;
    Decoder d;
    int w, h;
    double fps;
    long frames; /* returned so far, for messages */
    struct SwsContext *sws;
    uint8_t *rgb;
    /* picture folders */
    char **names;
    int n_names, next_name;
};

static void av_msg(char *err, size_t errn, const char *path, const char *what, int ret) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(ret, buf, sizeof buf);
    snprintf(err, errn, "'%s': %s: %s", path, what, buf);
}

static void decoder_close(Decoder *d) {
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    memset(d, 0, sizeof *d);
}

static int decoder_open(Decoder *d, const char *path, char *err, size_t errn) {
    memset(d, 0, sizeof *d);
    int ret = avformat_open_input(&d->fmt, path, NULL, NULL);
    if (ret < 0) return av_msg(err, errn, path, "cannot open as a video", ret), -1;
    if ((ret = avformat_find_stream_info(d->fmt, NULL)) < 0)
        return av_msg(err, errn, path, "cannot read stream info (truncated?)", ret), decoder_close(d), -1;
    const AVCodec *codec = NULL;
    d->stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (d->stream < 0 || !codec)
        return snprintf(err, errn, "'%s': no video stream that this build decodes", path), decoder_close(d), -1;
    d->dec = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(d->dec, d->fmt->streams[d->stream]->codecpar);
    d->dec->thread_count = 1; /* ranks, not threads, import in parallel (the cores are shared) */
    if ((ret = avcodec_open2(d->dec, codec, NULL)) < 0)
        return av_msg(err, errn, path, "cannot open the decoder", ret), decoder_close(d), -1;
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (d->dec->width <= 0 || d->dec->height <= 0)
        return snprintf(err, errn, "'%s': video stream has no frame size", path), decoder_close(d), -1;
    return 0;
}

/* The next decoded frame into d->frame: 1, 0 at the end, -1 on error. */
static int decoder_next(Decoder *d, const char *path, char *err, size_t errn) {
    for (;;) {
        int ret = avcodec_receive_frame(d->dec, d->frame);
        if (ret == 0) return 1;
        if (ret == AVERROR_EOF) return 0;
        if (ret != AVERROR(EAGAIN)) return av_msg(err, errn, path, "cannot decode a frame (corrupt?)", ret), -1;
        if (d->draining) return 0;
        ret = av_read_frame(d->fmt, d->pkt);
        if (ret == AVERROR_EOF) {
            d->draining = 1;
            avcodec_send_packet(d->dec, NULL); /* flush the frames the decoder still holds */
            continue;
        }
        if (ret < 0) return av_msg(err, errn, path, "cannot read (truncated or unreadable file?)", ret), -1;
        if (d->pkt->stream_index != d->stream) {
            av_packet_unref(d->pkt);
            continue;
        }
        ret = avcodec_send_packet(d->dec, d->pkt);
        av_packet_unref(d->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) return av_msg(err, errn, path, "corrupt or truncated video data", ret), -1;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The folder's pictures, sorted by name (frame order). */
static int list_pictures(VideoReader *v, char *err, size_t errn) {
    DIR *dir = opendir(v->path);
    if (!dir) return snprintf(err, errn, "'%s': cannot open the frame folder", v->path), -1;
    int cap = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.' || !video_is_picture_name(e->d_name)) continue;
        if (v->n_names == cap) {
            cap = cap ? 2 * cap : 64;
            v->names = realloc(v->names, cap * sizeof *v->names);
        }
        size_t n = strlen(v->path) + strlen(e->d_name) + 2;
        v->names[v->n_names] = malloc(n);
        snprintf(v->names[v->n_names++], n, "%s/%s", v->path, e->d_name);
    }
    closedir(dir);
    if (v->n_names == 0) return snprintf(err, errn, "'%s': no .png/.jpg/.jpeg frames in the folder", v->path), -1;
    qsort(v->names, v->n_names, sizeof *v->names, cmp_str);
    return 0;
}

VideoReader *video_open(const char *path, char *err, size_t errn) {
    av_log_set_level(AV_LOG_FATAL); /* our messages name the file and the reason */
    VideoReader *v = calloc(1, sizeof *v);
    v->path = strdup(path);
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errn, "'%s': no such file or folder", path);
        video_close(v);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        /* the first picture gives the size; each picture is opened as it comes */
        if (list_pictures(v, err, errn) || decoder_open(&v->d, v->names[0], err, errn)) {
            video_close(v);
            return NULL;
        }
        v->next_name = 1;
    } else {
        if (decoder_open(&v->d, path, err, errn)) {
            video_close(v);
            return NULL;
        }
        AVRational r = v->d.fmt->streams[v->d.stream]->avg_frame_rate;
        if (r.num <= 0 || r.den <= 0) r = v->d.fmt->streams[v->d.stream]->r_frame_rate;
        v->fps = r.num > 0 && r.den > 0 ? av_q2d(r) : 0;
    }
    v->w = v->d.dec->width, v->h = v->d.dec->height;
    v->rgb = malloc((size_t)3 * v->w * v->h);
    return v;
}

int video_width(const VideoReader *v) { return v->w; }
int video_height(const VideoReader *v) { return v->h; }
double video_fps(const VideoReader *v) { return v->fps; }

/* d.frame to packed RGB24, honouring the stream's colour matrix and range. */
static int to_rgb(VideoReader *v, const char *path, char *err, size_t errn) {
    AVFrame *f = v->d.frame;
    if (f->width != v->w || f->height != v->h)
        return snprintf(err, errn, "'%s': frame %ld is %dx%d, the first was %dx%d", path, v->frames, f->width,
                        f->height, v->w, v->h), -1;
    v->sws = sws_getCachedContext(v->sws, v->w, v->h, f->format, v->w, v->h, AV_PIX_FMT_RGB24,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!v->sws) return snprintf(err, errn, "'%s': cannot convert pixel format %d to RGB", path, f->format), -1;
    int cs = f->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_DEFAULT;
    const int *coef = sws_getCoefficients(cs);
    int full = f->color_range == AVCOL_RANGE_JPEG || f->format == AV_PIX_FMT_YUVJ420P ||
               f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P;
    sws_setColorspaceDetails(v->sws, coef, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    uint8_t *dst[4] = {v->rgb, NULL, NULL, NULL};
    int stride[4] = {3 * v->w, 0, 0, 0};
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, v->h, dst, stride);
    return 0;
}

int video_next(VideoReader *v, const uint8_t **rgb, char *err, size_t errn) {
    const char *path = v->names ? v->names[v->next_name - 1] : v->path;
    int got = v->d.fmt ? decoder_next(&v->d, path, err, errn) : 0;
    if (got < 0) return -1;
    if (got == 0 && v->names && v->next_name < v->n_names) {
        /* next picture of the folder */
        decoder_close(&v->d);
        path = v->names[v->next_name++];
        if (decoder_open(&v->d, path, err, errn)) return -1;
        if ((got = decoder_next(&v->d, path, err, errn)) <= 0) {
            if (got == 0) snprintf(err, errn, "'%s': the picture holds no frame", path);
            return -1;
        }
    }
    if (got == 0) return 0;
    if (rgb && to_rgb(v, path, err, errn)) return -1;
    v->frames++;
    if (rgb) *rgb = v->rgb;
    return 1;
}

void video_close(VideoReader *v) {
    if (!v) return;
    decoder_close(&v->d);
    sws_freeContext(v->sws);
    for (int i = 0; i < v->n_names; i++) free(v->names[i]);
    free(v->names);
    free(v->rgb);
    free(v->path);
    free(v);
}

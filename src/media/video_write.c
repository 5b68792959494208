/* RGB -> yuv420p (libswscale) -> H.264 (libx264 at CRF 18, one thread, so
 * the same frames give the same bytes) -> MP4 (faststart: the index first). */
#define _POSIX_C_SOURCE 200809L
#include "media/video_write.h"
#include "core/die.h"
#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct VideoWriter {
    char path[4096], tmp[4128];
    int w, h, W, H; /* given and encoded (even) sizes */
    int partial;
    long n;
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *rgb; /* W x H padded copy */
};

static void fail(VideoWriter *v, const char *what, int ret) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(ret, buf, sizeof buf);
    ep_die("'%s': %s: %s", v->path, what, buf);
}

/* Every packet the encoder has ready, into the file. */
static void drain(VideoWriter *v) {
    for (;;) {
        int ret = avcodec_receive_packet(v->enc, v->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
        if (ret < 0) fail(v, "cannot encode", ret);
        if (v->pkt->duration <= 0) v->pkt->duration = 1; /* one frame: else the track ends at the last frame's start */
        av_packet_rescale_ts(v->pkt, v->enc->time_base, v->st->time_base);
        v->pkt->stream_index = v->st->index;
        if ((ret = av_interleaved_write_frame(v->oc, v->pkt)) < 0) fail(v, "cannot write (disk full?)", ret);
    }
}

VideoWriter *video_write_open(const char *path, int w, int h, double fps) {
    av_log_set_level(AV_LOG_FATAL);
    VideoWriter *v = ep_calloc(1, sizeof *v, "video writer");
    snprintf(v->path, sizeof v->path, "%s", path);
    snprintf(v->tmp, sizeof v->tmp, "%s.tmp", path);
    v->w = w, v->h = h, v->W = w + (w & 1), v->H = h + (h & 1);
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
    if (!codec) ep_die("'%s': this libavcodec has no H.264 encoder", path);
    int ret = avformat_alloc_output_context2(&v->oc, NULL, "mp4", v->tmp);
    if (ret < 0) fail(v, "cannot set up the mp4 muxer", ret);
    v->st = avformat_new_stream(v->oc, NULL);
    v->enc = avcodec_alloc_context3(codec);
    v->enc->width = v->W, v->enc->height = v->H;
    v->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    AVRational rate = av_d2q(fps > 0 ? fps : 8.0, 100000);
    v->enc->time_base = av_inv_q(rate);
    v->enc->framerate = rate;
    v->enc->thread_count = 1;
    v->enc->gop_size = 12;
    v->enc->max_b_frames = 0; /* no reordering: with B-frames the mp4 edit list hid a frame of short clips */
    if (v->oc->oformat->flags & AVFMT_GLOBALHEADER) v->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_opt_set(v->enc->priv_data, "crf", "18", 0); /* near transparent */
    av_opt_set(v->enc->priv_data, "preset", "medium", 0);
    if ((ret = avcodec_open2(v->enc, codec, NULL)) < 0) fail(v, "cannot open the H.264 encoder", ret);
    avcodec_parameters_from_context(v->st->codecpar, v->enc);
    v->st->time_base = v->enc->time_base;
    v->partial = ep_partial_begin(v->tmp);
    if ((ret = avio_open(&v->oc->pb, v->tmp, AVIO_FLAG_WRITE)) < 0) fail(v, "cannot create", ret);
    AVDictionary *opt = NULL;
    av_dict_set(&opt, "movflags", "+faststart", 0);
    ret = avformat_write_header(v->oc, &opt);
    av_dict_free(&opt);
    if (ret < 0) fail(v, "cannot write the header", ret);
    v->frame = av_frame_alloc();
    v->frame->format = AV_PIX_FMT_YUV420P, v->frame->width = v->W, v->frame->height = v->H;
    if (av_frame_get_buffer(v->frame, 0) < 0) ep_die("'%s': out of memory for a frame", path);
    v->pkt = av_packet_alloc();
    v->sws = sws_getContext(v->W, v->H, AV_PIX_FMT_RGB24, v->W, v->H, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, NULL, NULL, NULL);
    v->rgb = ep_malloc((size_t)3 * v->W * v->H, "video frame");
    return v;
}

void video_write_frame(VideoWriter *v, const uint8_t *rgb) {
    for (int y = 0; y < v->H; y++) { /* the padding repeats the last column and row */
        const uint8_t *src = rgb + (size_t)(y < v->h ? y : v->h - 1) * v->w * 3;
        uint8_t *dst = v->rgb + (size_t)y * v->W * 3;
        memcpy(dst, src, (size_t)v->w * 3);
        if (v->W > v->w) memcpy(dst + (size_t)v->w * 3, src + (size_t)(v->w - 1) * 3, 3);
    }
    if (av_frame_make_writable(v->frame) < 0) ep_die("'%s': frame buffer busy", v->path);
    const uint8_t *in[4] = {v->rgb, NULL, NULL, NULL};
    int stride[4] = {3 * v->W, 0, 0, 0};
    sws_scale(v->sws, in, stride, 0, v->H, v->frame->data, v->frame->linesize);
    v->frame->pts = v->n++;
    int ret = avcodec_send_frame(v->enc, v->frame);
    if (ret < 0) fail(v, "cannot encode a frame", ret);
    drain(v);
}

void video_write_close(VideoWriter *v) {
    int ret = avcodec_send_frame(v->enc, NULL); /* flush the delayed frames */
    if (ret < 0) fail(v, "cannot flush the encoder", ret);
    drain(v);
    if ((ret = av_write_trailer(v->oc)) < 0) fail(v, "cannot finish the file", ret);
    avio_closep(&v->oc->pb);
    if (rename(v->tmp, v->path) != 0) ep_die("cannot rename '%s' to '%s': %s", v->tmp, v->path, strerror(errno));
    ep_partial_done(v->partial);
    sws_freeContext(v->sws);
    av_packet_free(&v->pkt);
    av_frame_free(&v->frame);
    avcodec_free_context(&v->enc);
    avformat_free_context(v->oc);
    free(v->rgb);
    free(v);
}

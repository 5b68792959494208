/* One video in: read every pose file first (small), plan which source frames
 * make which clip frames and where the person is, then decode the video once,
 * keeping only the planned frames, so memory holds one clip at a time. A
 * rendered pose video takes the pose files' place: it is decoded twice, once
 * for its frame count and where its pose pixels are (the crop, the reference
 * frames), then beside the video for the frames kept. */
#define _POSIX_C_SOURCE 200809L
#include "data/import_one.h"
#include "core/die.h"
#include "data/openpose.h"
#include "media/raster.h"
#include "media/resize.h"
#include "media/video_read.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PICTURE_FOLDER_FPS 30.0 /* frames extracted from phone videos, as in the TikTok dataset */
/* A pose video's pixel is part of the pose when its brightest channel reaches
 * this: far above the few levels of codec noise on the black background, far
 * below the saturated colours skeleton renderers draw (255 in some channel). */
#define POSE_INK 64

/* A video's poses: keypoints read from OpenPose files, or a rendered pose video. */
typedef struct {
    BodyPose *kp;      /* [n] keypoints per source frame; NULL for a pose video */
    const char *video; /* the pose video (or pose frame folder) */
    int pw, ph;        /* its frame size */
    int *box;          /* [n][4] x0, y0, x1, y1 of its pose pixels, pixel edges; x1 = 0 when none */
    long *ink;         /* [n] pose pixels per frame */
    int n;             /* source frames the poses cover */
} Poses;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* <poses>/<stem>/ *.json sorted by name, read into p->kp[n]. */
static int read_poses(const ImportSetup *s, const char *stem, Poses *p, char *err, size_t errn) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", s->o->poses, stem);
    DIR *d = opendir(dir);
    if (!d) return snprintf(err, errn, "'%s': no pose folder for video '%s'", dir, stem), -1;
    char **names = NULL;
    int cap = 0, k = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 5, ".json")) continue;
        if (k == cap) names = realloc(names, (cap = cap ? 2 * cap : 256) * sizeof *names);
        names[k++] = strdup(e->d_name);
    }
    closedir(d);
    int rc = 0;
    if (k == 0) rc = -1, snprintf(err, errn, "'%s': no .json pose files", dir);
    qsort(names, k, sizeof *names, cmp_str);
    p->kp = ep_malloc(sizeof *p->kp * (k ? k : 1), "poses");
    p->n = k;
    for (int i = 0; i < k && rc == 0; i++) {
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = openpose_read(path, &p->kp[i], err, errn);
    }
    for (int i = 0; i < k; i++) free(names[i]);
    free(names);
    return rc;
}

/* The first pass over a pose video: its frame count, and per frame the box
 * and the count of its pose pixels. */
static int scan_pose_video(Poses *p, char *err, size_t errn) {
    VideoReader *v = video_open(p->video, err, errn);
    if (!v) return -1;
    int w = video_width(v), h = video_height(v), cap = 0, got;
    p->pw = w, p->ph = h;
    const uint8_t *rgb;
    while ((got = video_next(v, &rgb, err, errn)) > 0) {
        if (p->n == cap) {
            cap = cap ? 2 * cap : 256;
            p->box = realloc(p->box, sizeof *p->box * 4 * cap);
            p->ink = realloc(p->ink, sizeof *p->ink * cap);
        }
        int *b = p->box + 4 * (size_t)p->n;
        long ink = 0;
        b[0] = w, b[1] = h, b[2] = 0, b[3] = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const uint8_t *q = rgb + 3 * ((size_t)y * w + x);
                if (q[0] < POSE_INK && q[1] < POSE_INK && q[2] < POSE_INK) continue;
                ink++;
                if (x < b[0]) b[0] = x;
                if (y < b[1]) b[1] = y;
                if (x + 1 > b[2]) b[2] = x + 1;
                if (y + 1 > b[3]) b[3] = y + 1;
            }
        p->ink[p->n++] = ink;
    }
    video_close(v);
    return got < 0 ? -1 : 0;
}

/* A joint's position in source pixels with pixel (i, j) spanning [j, j+1):
 * OpenPose's integer pixel centres move by half a pixel. */
static void joint_px(const ImportSetup *s, const BodyPose *p, int k, int w, int h, double *x, double *y) {
    if (s->o->normalized) *x = p->x[k] * w, *y = p->y[k] * h;
    else *x = p->x[k] + 0.5, *y = p->y[k] + 0.5;
}

/* Source frame of dataset frame k: the nearest in time (constant frame rates). */
static long source_of(long k, double src_fps, double fps) { return (long)floor(k * src_fps / fps + 0.5); }

/* The person's box over the used frames, in source pixels: of the confident
 * joints, or of a pose video's pose pixels (scaled from its size to the
 * video's). Returns 0, or -1 when the used frames show no one. */
static int person_box(const ImportSetup *s, const Poses *p, long used, double src_fps, int w, int h, double b[4]) {
    double bx0 = INFINITY, by0 = INFINITY, bx1 = -INFINITY, by1 = -INFINITY;
    for (long k = 0; k < used; k++) {
        long i = source_of(k, src_fps, s->fps);
        if (!p->kp) {
            const int *q = p->box + 4 * i;
            if (q[2] == 0) continue;
            bx0 = fmin(bx0, q[0] * (double)w / p->pw), bx1 = fmax(bx1, q[2] * (double)w / p->pw);
            by0 = fmin(by0, q[1] * (double)h / p->ph), by1 = fmax(by1, q[3] * (double)h / p->ph);
            continue;
        }
        for (int j = 0; j < FIG_NJOINTS; j++) {
            if (p->kp[i].conf[j] < s->o->min_conf) continue;
            double x, y;
            joint_px(s, &p->kp[i], j, w, h, &x, &y);
            bx0 = fmin(bx0, x), bx1 = fmax(bx1, x), by0 = fmin(by0, y), by1 = fmax(by1, y);
        }
    }
    b[0] = bx0, b[1] = by0, b[2] = bx1, b[3] = by1;
    return bx1 >= bx0 ? 0 : -1;
}

/* The crop [x0, x1) x [y0, y1), with the deck's aspect W/H: the person's box
 * grown by the margin, or the largest centred one. */
static void plan_crop(const ImportSetup *s, const double b[4], int w, int h, double c[4]) {
    double aspect = (double)s->m->W / s->m->H;
    double bx0 = b[0], by0 = b[1], bx1 = b[2], by1 = b[3];
    double cw, ch, cx, cy;
    if (s->o->centre_crop) {
        cx = w / 2.0, cy = h / 2.0, cw = w, ch = h;
    } else {
        /* the margin also makes room for the head above the nose and the feet below the ankles */
        double pad = s->o->margin * fmax(fmax(bx1 - bx0, by1 - by0), 1.0);
        cw = bx1 - bx0 + 2 * pad, ch = by1 - by0 + 2 * pad;
        cx = (bx0 + bx1) / 2, cy = (by0 + by1) / 2;
    }
    if (cw < ch * aspect) cw = ch * aspect;
    else ch = cw / aspect;
    if (cw > w) cw = w, ch = cw / aspect; /* never beyond the frame: the crop shrinks instead */
    if (ch > h) ch = h, cw = ch * aspect;
    double x0 = fmin(fmax(cx - cw / 2, 0), w - cw), y0 = fmin(fmax(cy - ch / 2, 0), h - ch);
    c[0] = x0, c[1] = y0, c[2] = x0 + cw, c[3] = y0 + ch;
}

/* Frame t of the clip from source pose b: keypoints in latent pixels, the
 * confident ones drawn into the pose map. */
static void put_pose(const ImportSetup *s, const BodyPose *b, int w, int h, const double c[4], ImportClip *clip,
                     int t, Canvas *map) {
    const ModelShape *m = s->m;
    double sc = m->W / (c[2] - c[0]);
    Vec2 j[FIG_NJOINTS];
    unsigned char seen[FIG_NJOINTS];
    for (int k = 0; k < FIG_NJOINTS; k++) {
        double x, y;
        joint_px(s, b, k, w, h, &x, &y);
        j[k] = (Vec2){(float)((x - c[0]) * sc), (float)((y - c[1]) * sc)};
        seen[k] = b->conf[k] >= s->o->min_conf;
        clip->keypoints[((size_t)t * FIG_NJOINTS + k) * 2 + 0] = j[k].x;
        clip->keypoints[((size_t)t * FIG_NJOINTS + k) * 2 + 1] = j[k].y;
        clip->conf[(size_t)t * FIG_NJOINTS + k] = b->conf[k];
    }
    const float black[3] = {0, 0, 0};
    canvas_clear(map, black);
    skeleton_draw_joints(j, seen, (float)m->s, map);
    size_t n = (size_t)3 * map->w * map->h;
    uint8_t *out = clip->pose + (size_t)t * n;
    for (size_t i = 0; i < n; i++) out[i] = to_byte(map->px[i]);
}

/* The clip's reference: the frame showing the most joints (then the most
 * confident), where the person is most completely in view; from a pose video,
 * the frame with the most pose pixels (the earliest of equals), for the same
 * reason: a limb hidden or out of frame is not drawn. */
static int pick_reference(const ImportClip *c, int T, const Poses *p, double min_conf) {
    int best = 0;
    double best_score = -1;
    for (int t = 0; t < T; t++) {
        int seen = 0;
        double sum = 0;
        for (int k = 0; k < FIG_NJOINTS && p->kp; k++) {
            float q = c->conf[(size_t)t * FIG_NJOINTS + k];
            seen += q >= min_conf, sum += q;
        }
        double score = p->kp ? seen + sum / (FIG_NJOINTS + 1.0) /* sum < 14: never outweighs one more joint */
                             : (double)p->ink[c->src_frame[t]];
        if (score > best_score) best_score = score, best = t;
    }
    return best;
}

int import_one(const ImportSetup *s, const char *video, const char *stem, const char *pose_video, ImportFile *f,
               ImportCount *n, char *err, size_t errn) {
    const ModelShape *m = s->m;
    int T = s->T, rc = -1;
    long start = import_file_count(f);
    Poses p = {.video = pose_video};
    VideoReader *v = NULL, *pv = NULL;
    ImportClip clip;
    Canvas map = {0};
    memset(&clip, 0, sizeof clip);
    n->src_decoded = 0, n->clips = 0;
    if (pose_video ? scan_pose_video(&p, err, errn) : read_poses(s, stem, &p, err, errn)) goto out;
    int n_pose = p.n;
    if (!(v = video_open(video, err, errn))) goto out;
    int w = video_width(v), h = video_height(v);
    double src_fps = s->o->src_fps > 0 ? s->o->src_fps : video_fps(v) > 0 ? video_fps(v)
                   : s->o->folder_fps > 0 ? s->o->folder_fps : PICTURE_FOLDER_FPS;
    /* Dataset frames from the poses' count; the decoded count must match it (checked at the end). */
    long n_out = (long)floor((n_pose - 1) * s->fps / src_fps + 1e-9) + 1;
    while (n_out > 0 && source_of(n_out - 1, src_fps, s->fps) >= n_pose) n_out--;
    long clips = n_out / T;
    if (s->o->max_clips > 0 && clips > s->o->max_clips) clips = s->o->max_clips;
    if (clips < 1) {
        snprintf(err, errn, "'%s': too few frames: %d at %.3g fps make %ld at %.3g fps, a clip needs data.frames = %d",
                 video, n_pose, src_fps, n_out, s->fps, T);
        goto out;
    }
    long used = clips * T;
    double box[4], crop[4];
    if (person_box(s, &p, used, src_fps, w, h, box)) {
        if (pose_video)
            snprintf(err, errn, "'%s': no person found: no pose pixel (a channel >= %d) in the %ld frames used of '%s'",
                     video, POSE_INK, used, pose_video);
        else
            snprintf(err, errn, "'%s': no person found: no joint with confidence >= %.3g in the %ld frames used",
                     video, s->o->min_conf, used);
        goto out;
    }
    plan_crop(s, box, w, h, crop);
    if (pose_video && !(pv = video_open(pose_video, err, errn))) goto out;
    import_clip_alloc(&clip, m, T);
    int sW = m->s * m->W, sH = m->s * m->H;
    if (!pv) canvas_init(&map, sW, sH);
    snprintf(clip.video, sizeof clip.video, "%s", stem);
    for (int i = 0; i < 4; i++) clip.crop[i] = (float)crop[i];
    size_t frame_px = (size_t)3 * m->H * m->W, pose_px = (size_t)3 * sW * sH;
    /* the crop in the pose video's pixels: it covers the video's whole frame at its own size */
    double sx = (double)p.pw / w, sy = (double)p.ph / h;
    long k = 0; /* next dataset frame */
    for (long i = 0;; i++) {
        int want = k < used && source_of(k, src_fps, s->fps) == i;
        const uint8_t *rgb = NULL, *prgb = NULL;
        int got = video_next(v, want ? &rgb : NULL, err, errn);
        if (got < 0) goto out;
        if (got == 0) break;
        n->src_decoded++;
        if (i >= n_pose) continue; /* more frames than poses: reported below */
        if (pv && (got = video_next(pv, want ? &prgb : NULL, err, errn)) <= 0) {
            if (got == 0) snprintf(err, errn, "'%s': ended at frame %ld on the second reading", pose_video, i);
            goto out;
        }
        /* a source frame may make several dataset frames when the dataset's rate is higher */
        for (; k < used && source_of(k, src_fps, s->fps) == i; k++) {
            int t = (int)(k % T);
            crop_resize_rgb(rgb, w, h, crop[0], crop[1], crop[2], crop[3], m->W, m->H, clip.frames + t * frame_px);
            if (pv)
                crop_resize_rgb(prgb, p.pw, p.ph, crop[0] * sx, crop[1] * sy, crop[2] * sx, crop[3] * sy, sW, sH,
                                clip.pose + t * pose_px);
            else
                put_pose(s, &p.kp[i], w, h, crop, &clip, t, &map);
            clip.src_frame[t] = (int32_t)i;
            if (t == T - 1) {
                clip.ref_frame = pick_reference(&clip, T, &p, s->o->min_conf);
                import_file_append(f, &clip);
                n->clips++;
            }
        }
    }
    if (n->src_decoded != n_pose) {
        if (pose_video)
            snprintf(err, errn, "'%s': %ld frames decoded but %d in the pose video '%s' (truncated or mismatched)",
                     video, n->src_decoded, n_pose, pose_video);
        else
            snprintf(err, errn,
                     "'%s': %ld frames decoded but %d pose files in '%s/%s' (truncated video or mismatched poses)",
                     video, n->src_decoded, n_pose, s->o->poses, stem);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && import_file_count(f) != start) import_file_truncate(f, start);
    if (rc != 0) n->clips = 0;
    video_close(v);
    video_close(pv);
    free(p.kp), free(p.box), free(p.ink);
    if (map.px) canvas_free(&map);
    if (clip.frames) import_clip_free(&clip);
    return rc;
}

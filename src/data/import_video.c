/* `entprog import-video`: the list of videos, the seeded split by video, the
 * ranks' shares, and the split files. Each rank appends its videos' clips to
 * its own temporary file; with several ranks they then copy them, in video
 * order, into one file per split written collectively, so the result is the
 * same on any number of ranks. Files are renamed only when complete. */
#define _POSIX_C_SOURCE 200809L
#include "data/import_video.h"
#include "core/clock.h"
#include "core/die.h"
#include "core/paths.h"
#include "core/rng.h"
#include "data/datagen.h"
#include "data/import_one.h"
#include "io/h5util.h"
#include "media/video_read.h"
#include <dirent.h>
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMPORT_FORMAT_VERSION 1 /* the dataset format of docs/formats.md, as datagen writes it */
#define ERR_MAX 1024
#define KEYPOINT_ORDER "nose,neck,r_shoulder,r_elbow,r_wrist,l_shoulder,l_elbow,l_wrist," \
                       "r_hip,r_knee,r_ankle,l_hip,l_knee,l_ankle"

typedef struct {
    char *name; /* file or folder name inside the videos folder */
    char *stem; /* name without the extension: its pose folder or pose video */
    char *pose; /* --pose-videos: the path of its pose video, NULL when there is none */
    int split;
} Video;

static int cmp_video(const void *a, const void *b) { return strcmp(((const Video *)a)->name, ((const Video *)b)->name); }
static int cmp_stem(const void *a, const void *b) { return strcmp(((const Video *)a)->stem, ((const Video *)b)->stem); }

/* Video files and picture folders of `dir` (given as `opt`), sorted by name. */
static Video *list_videos(const char *opt, const char *dir, int *n) {
    DIR *d = opendir(dir);
    if (!d) ep_die("%s '%s': cannot open the folder: %s", opt, dir, strerror(errno));
    Video *v = NULL;
    int cap = 0, k = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        int folder = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
        if (!folder && !video_is_video_name(e->d_name)) continue;
        if (k == cap) v = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
        v[k].name = strdup(e->d_name);
        v[k].stem = strdup(e->d_name);
        v[k].pose = NULL;
        char *dot = strrchr(v[k].stem, '.');
        if (!folder && dot) *dot = 0;
        if (strlen(v[k].stem) >= IMPORT_NAME_MAX) ep_die("'%s': name longer than %d bytes", path, IMPORT_NAME_MAX - 1);
        k++;
    }
    closedir(d);
    if (k == 0) ep_die("%s '%s': no videos (.mp4 .m4v .webm .mov .mkv .avi) or frame folders in it", opt, dir);
    qsort(v, k, sizeof *v, cmp_video);
    for (int i = 1; i < k; i++)
        if (!strcmp(v[i].stem, v[i - 1].stem))
            ep_die("%s '%s': '%s' and '%s' would share the name '%s' (one video, pose folder or pose video per name)",
                   opt, dir, v[i - 1].name, v[i].name, v[i].stem);
    *n = k;
    return v;
}

/* --pose-videos: each video's pose video (or pose frame folder), matched by
 * name without the extension; the folder is listed once, not per video. */
static void match_pose_videos(const char *dir, Video *v, int n) {
    int np = 0;
    Video *p = list_videos("--pose-videos", dir, &np);
    qsort(p, np, sizeof *p, cmp_stem);
    for (int i = 0; i < n; i++) {
        Video key = {.stem = v[i].stem};
        const Video *hit = bsearch(&key, p, np, sizeof *p, cmp_stem);
        if (!hit) continue;
        size_t len = strlen(dir) + strlen(hit->name) + 2;
        v[i].pose = ep_malloc(len, "pose video path");
        snprintf(v[i].pose, len, "%s/%s", dir, hit->name);
    }
    for (int i = 0; i < np; i++) free(p[i].name), free(p[i].stem);
    free(p);
}

/* Test and validation videos drawn by a seeded shuffle; the rest train. */
static void assign_splits(Video *v, int n, const ImportOptions *o, int counts[SPLIT_COUNT]) {
    int dflt = n >= 3 ? (n + 5) / 10 : 0;
    if (n >= 3 && dflt < 1) dflt = 1;
    int n_val = o->val >= 0 ? o->val : dflt, n_test = o->test >= 0 ? o->test : dflt;
    if (n_val + n_test >= n)
        ep_die("import-video: %d videos: --val %d and --test %d leave none to train on", n, n_val, n_test);
    int *perm = ep_malloc(sizeof(int) * n, "split order");
    for (int i = 0; i < n; i++) perm[i] = i;
    Rng r;
    rng_seed_stream(&r, (uint64_t)o->seed, 0x1A9057ull);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int i = 0; i < n; i++) v[perm[i]].split = i < n_test ? SPLIT_TEST : i < n_test + n_val ? SPLIT_VAL : SPLIT_TRAIN;
    free(perm);
    counts[SPLIT_TRAIN] = n - n_val - n_test, counts[SPLIT_VAL] = n_val, counts[SPLIT_TEST] = n_test;
}

typedef struct {
    char *text; /* "path: reason" lines of the skipped videos */
    size_t len;
} Skipped;

static void skipped_add(Skipped *s, const char *line) {
    size_t n = strlen(line);
    s->text = realloc(s->text, s->len + n + 2);
    memcpy(s->text + s->len, line, n);
    s->len += n;
    s->text[s->len++] = '\n';
    s->text[s->len] = 0;
}

static void write_attrs(hid_t f, const Deck *d, const ImportOptions *o, double fps, int split) {
    h5_attr_int(f, "/", "format_version", IMPORT_FORMAT_VERSION);
    h5_attr_str(f, "/", "latent_space", "pixel");
    h5_attr_double(f, "/", "latent_scale", 1.0);
    h5_attr_double(f, "/", "fps", fps);
    h5_attr_str(f, "/", "split", datagen_split_names[split]);
    uint64_t seed = (uint64_t)o->seed;
    h5_attr_u64_array(f, "/", "seed", &seed, 1);
    h5_attr_int(f, "/", "pose_scale", d->model.s);
    h5_attr_str(f, "/", "generator", "entprog import-video");
    h5_attr_str(f, "/", "pose_input", o->pose_videos ? "pose videos" : "keypoints");
    if (!o->pose_videos) { /* pose videos carry no keypoints */
        h5_attr_str(f, "/", "keypoint_order", KEYPOINT_ORDER);
        h5_attr_double(f, "/", "min_conf", o->min_conf);
    }
    h5_attr_str(f, "/", "crop", o->centre_crop ? "centre" : "person");
    h5_attr_str(f, "/", "source_videos", o->videos);
    h5_attr_str(f, "/", "source_poses", o->pose_videos ? o->pose_videos : o->poses);
}

static void check_deck(const Deck *d) {
    const ModelShape *m = &d->model;
    const char *bad = shape_check(m, 1);
    if (bad) ep_die("%s: %s", d->path, bad);
    if (m->C != 3) ep_die("%s: model.C = %d: import-video writes pixel-space latents, which need C = 3", d->path, m->C);
    if (m->Cp != 3) ep_die("%s: model.Cp = %d: import-video draws RGB pose maps, which need Cp = 3", d->path, m->Cp);
}

void import_video_run(const Deck *d, const ImportOptions *o) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    check_deck(d);
    const char *out = o->out ? o->out : d->data.dir;
    if (!out[0]) ep_die("import-video: no output folder (--out or the deck's data.dir)");
    double fps = o->fps > 0 ? o->fps : d->data.fps > 0 ? d->data.fps : 8.0;
    ImportSetup s = {&d->model, d->data.frames, fps, o};
    if (rank == 0) path_mkdirs(out, "--out");
    MPI_Barrier(MPI_COMM_WORLD);

    int n = 0, counts[SPLIT_COUNT];
    Video *v = list_videos("--videos", o->videos, &n);
    if (o->pose_videos) match_pose_videos(o->pose_videos, v, n);
    int keypoints = !o->pose_videos;
    assign_splits(v, n, o, counts);
    double t0 = clock_s();

    /* Each rank: a contiguous share of each split's videos (in name order) into its own file. */
    char part[SPLIT_COUNT][4096], final[SPLIT_COUNT][4096], tmp[SPLIT_COUNT][4096];
    int part_h[SPLIT_COUNT], tmp_h[SPLIT_COUNT];
    long my_clips[SPLIT_COUNT] = {0}, decoded = 0;
    Skipped skipped = {0};
    char first_bad[ERR_MAX] = "";
    for (int sp = 0; sp < SPLIT_COUNT; sp++) {
        snprintf(final[sp], sizeof final[sp], "%s/%s.h5", out, datagen_split_names[sp]);
        snprintf(tmp[sp], sizeof tmp[sp], "%s.tmp", final[sp]);
        if (size == 1) snprintf(part[sp], sizeof part[sp], "%s", tmp[sp]);
        else snprintf(part[sp], sizeof part[sp], "%s.rank%d.tmp", final[sp], rank);
        part_h[sp] = tmp_h[sp] = -1;
    }
    for (int sp = 0; sp < SPLIT_COUNT; sp++) {
        if (counts[sp] == 0) continue;
        part_h[sp] = ep_partial_begin(part[sp]);
        ImportFile *f = import_file_create(part[sp], &d->model, s.T, keypoints, MPI_COMM_NULL, 0);
        int lo = (int)((long)counts[sp] * rank / size), hi = (int)((long)counts[sp] * (rank + 1) / size), i = 0;
        for (int j = 0; j < n && !first_bad[0]; j++) {
            if (v[j].split != sp) continue;
            int mine = i >= lo && i < hi;
            i++;
            if (!mine) continue;
            char path[4096], err[ERR_MAX];
            snprintf(path, sizeof path, "%s/%s", o->videos, v[j].name);
            ImportCount c;
            if (o->pose_videos && !v[j].pose)
                snprintf(err, sizeof err, "'%s/%s': no pose video or pose frame folder of that name for '%s/%s'",
                         o->pose_videos, v[j].stem, o->videos, v[j].name);
            else if (import_one(&s, path, v[j].stem, v[j].pose, f, &c, err, sizeof err) == 0) {
                decoded += c.src_decoded;
                continue;
            }
            if (o->skip_bad) skipped_add(&skipped, err);
            else snprintf(first_bad, sizeof first_bad, "%s", err);
        }
        my_clips[sp] = import_file_count(f);
        if (size == 1 && my_clips[sp] > 0 && !first_bad[0]) write_attrs(import_file_handle(f), d, o, fps, sp);
        import_file_close(f);
        if (first_bad[0]) break;
    }

    /* A bad file without --skip-bad: every rank removes what it wrote, then the import stops with the file's name. */
    int bad_rank = first_bad[0] ? rank : size, first = size;
    MPI_Allreduce(&bad_rank, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first < size) {
        for (int sp = 0; sp < SPLIT_COUNT; sp++) unlink(part[sp]);
        MPI_Bcast(first_bad, ERR_MAX, MPI_CHAR, first, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) ep_die("%s (--skip-bad skips such videos)", first_bad);
        MPI_Barrier(MPI_COMM_WORLD); /* rank 0's death ends the others */
    }

    long total[SPLIT_COUNT] = {0}, all_decoded = 0;
    MPI_Reduce(&decoded, &all_decoded, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    for (int sp = 0; sp < SPLIT_COUNT; sp++) {
        if (counts[sp] == 0) continue;
        long *per = ep_malloc(sizeof(long) * size, "clips per rank");
        MPI_Allgather(&my_clips[sp], 1, MPI_LONG, per, 1, MPI_LONG, MPI_COMM_WORLD);
        long before = 0, rounds = 0;
        for (int r = 0; r < size; r++) {
            if (r < rank) before += per[r];
            total[sp] += per[r];
            if (per[r] > rounds) rounds = per[r];
        }
        free(per);
        if (size > 1 && total[sp] > 0) {
            /* one collective file: rank r's clips go after those of ranks < r */
            if (rank == 0) tmp_h[sp] = ep_partial_begin(tmp[sp]);
            ImportFile *dst = import_file_create(tmp[sp], &d->model, s.T, keypoints, MPI_COMM_WORLD, total[sp]);
            ImportFile *src = my_clips[sp] > 0 ? import_file_open_read(part[sp], &d->model, s.T, keypoints) : NULL;
            ImportClip c;
            import_clip_alloc(&c, &d->model, s.T);
            for (long k = 0; k < rounds; k++) {
                int have = k < my_clips[sp];
                if (have) import_file_read(src, k, &c);
                import_file_write_at(dst, have ? before + k : 0, have ? &c : NULL);
            }
            import_clip_free(&c);
            if (src) import_file_close(src);
            write_attrs(import_file_handle(dst), d, o, fps, sp);
            import_file_close(dst);
            unlink(part[sp]);
            ep_partial_done(part_h[sp]);
            MPI_Barrier(MPI_COMM_WORLD);
        }
        if (total[sp] == 0) unlink(part[sp]);
        if (rank == 0 && total[sp] > 0) {
            if (rename(tmp[sp], final[sp]) != 0) ep_die("cannot rename '%s' to '%s': %s", tmp[sp], final[sp], strerror(errno));
            printf("import-video: %s: %ld clips x %d frames at %.3g fps, %dx%d, %dx%d pose maps -> %s\n",
                   datagen_split_names[sp], total[sp], s.T, fps, d->model.H, d->model.W, d->model.s * d->model.H,
                   d->model.s * d->model.W, final[sp]);
        } else if (rank == 0) {
            printf("import-video: %s: no clips, no file written\n", datagen_split_names[sp]);
        }
        ep_partial_done(tmp_h[sp]);
        ep_partial_done(part_h[sp]);
    }

    /* What was skipped, gathered on rank 0 in rank order. */
    int len = (int)skipped.len, *lens = rank == 0 ? ep_malloc(sizeof(int) * size, "skip lengths") : NULL;
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    int *displ = NULL, sum = 0;
    char *all = NULL;
    if (rank == 0) {
        displ = ep_malloc(sizeof(int) * size, "skip offsets");
        for (int r = 0; r < size; r++) displ[r] = sum, sum += lens[r];
        all = ep_calloc((size_t)sum + 1, 1, "skip list");
    }
    MPI_Gatherv(skipped.text ? skipped.text : "", len, MPI_CHAR, all, lens, displ, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        int n_skip = 0;
        for (int i = 0; i < sum; i++) n_skip += all[i] == '\n';
        double dt = clock_s() - t0;
        long frames = (total[0] + total[1] + total[2]) * s.T;
        printf("import-video: %d videos, %d skipped; %ld source frames decoded, %ld dataset frames written in %.2f s "
               "(%.1f source frames/s, %d rank%s)\n",
               n, n_skip, all_decoded, frames, dt, dt > 0 ? all_decoded / dt : 0.0, size, size > 1 ? "s" : "");
        if (n_skip) printf("import-video: skipped:\n%s", all);
        fflush(stdout);
    }
    free(all), free(lens), free(displ), free(skipped.text);
    for (int i = 0; i < n; i++) free(v[i].name), free(v[i].stem), free(v[i].pose);
    free(v);
}

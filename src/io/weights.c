/* Weights in either format (weights.h). */
#include "io/weights.h"
#include "core/die.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shape keys, named as the HDF5 root attributes (docs/formats.md). */

/* Reads the shape keys present in the metadata into m; returns how many were there. */
static int meta_shape(const StFile *sf, ModelShape *m) {
    int got = 0;
    for (int i = 0; i < SHAPE_N_KEYS; i++) {
        const char *v = st_meta(sf, SHAPE_KEY_NAMES[i]);
        if (!v) continue;
        char *end;
        long x = strtol(v, &end, 10);
        if (*v == 0 || *end || x < 0 || x > 1 << 24)
            ep_die("'%s': __metadata__ '%s' = '%s' is not a model size", sf->path, SHAPE_KEY_NAMES[i], v);
        *shape_key(m, i) = (int)x;
        got++;
    }
    const char *fe = st_meta(sf, "frame_embed");
    if (!shape_set_frame_embed(m, fe ? fe : "input"))
        ep_die("'%s': __metadata__ 'frame_embed' = '%s' is neither 'input' nor 'temporal'", sf->path, fe);
    return got;
}

void weights_read_shape(const char *path, ModelShape *shape) {
    if (!st_is_safetensors(path)) {
        ckpt_read_shape(path, shape);
        return;
    }
    StFile sf;
    st_open(&sf, path);
    memset(shape, 0, sizeof *shape);
    meta_shape(&sf, shape);
    for (int i = 1; i < SHAPE_N_KEYS; i++) /* F is optional, as in bare weights */
        if (!st_meta(&sf, SHAPE_KEY_NAMES[i]))
            ep_die("'%s' has no __metadata__ '%s': the model shape is unknown (write the file with entprog export, "
                   "or give the shape keys as metadata)", path, SHAPE_KEY_NAMES[i]);
    st_close(&sf);
}

static void shape_text(char *buf, size_t n, int ndim, const int64_t *sh) {
    int w = snprintf(buf, n, "[");
    for (int d = 0; d < ndim && w < (int)n; d++) w += snprintf(buf + w, n - w, d ? ",%lld" : "%lld", (long long)sh[d]);
    if (w < (int)n) snprintf(buf + w, n - w, "]");
}

/* Every check before any value is read: the file names exactly this model's tensors, with their shapes. */
static void check_tensors(const StFile *sf, const ParamTable *pt, const ModelShape *want) {
    ModelShape have = {0};
    if (meta_shape(sf, &have))
        for (int i = 1; i < SHAPE_N_KEYS; i++) /* F excepted: it only sizes activations */
            if (st_meta(sf, SHAPE_KEY_NAMES[i]) && *shape_key(&have, i) != *shape_key((ModelShape *)want, i))
                ep_die("'%s' has %s = %d but the model has %s = %d", sf->path, SHAPE_KEY_NAMES[i], *shape_key(&have, i),
                       SHAPE_KEY_NAMES[i], *shape_key((ModelShape *)want, i));
    if (st_meta(sf, "frame_embed")) shape_warn_frame_embed(sf->path, &have, want);
    for (int i = 0; i < sf->n; i++)
        if (param_find(pt, sf->t[i].name) < 0)
            ep_die("'%s' has tensor '%s', which is not a parameter of this model", sf->path, sf->t[i].name);
    for (int i = 0; i < pt->n; i++) {
        const ParamInfo *p = &pt->info[i];
        const StTensor *t = st_find(sf, p->name);
        if (!t) ep_die("'%s' lacks tensor '%s'", sf->path, p->name);
        int64_t sh[4];
        for (int d = 0; d < p->ndim; d++) sh[d] = p->shape[d];
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == sh[d];
        if (!same) {
            char a[128], b[128];
            shape_text(a, sizeof a, t->ndim, t->shape);
            shape_text(b, sizeof b, p->ndim, sh);
            ep_die("'%s': tensor '%s' has shape %s but the model needs %s", sf->path, p->name, a, b);
        }
    }
}

int weights_load(const char *path, CkptState *s, MPI_Comm comm) {
    if (!st_is_safetensors(path)) return ckpt_load(path, s, comm);
    StFile sf;
    st_open(&sf, path);
    check_tensors(&sf, s->pt, &s->shape);
    /* read into a scratch copy so that a bad value later in the file leaves s->params untouched */
    float *w = ep_malloc(s->pt->total * sizeof(float), "safetensors weights");
    for (int i = 0; i < s->pt->n; i++)
        st_read_f32(&sf, st_find(&sf, s->pt->info[i].name), w + s->pt->info[i].offset);
    memcpy(s->params, w, s->pt->total * sizeof(float));
    free(w);
    st_close(&sf);
    for (int i = 0; i < s->n_arrays; i++) s->arrays[i].rows = 0; /* no schedule in a weights file */
    return CKPT_BARE;
}

void weights_save_safetensors(const char *path, const ParamTable *pt, const ModelShape *shape, const float *w,
                              StOutType type) {
    StOut *t = ep_calloc((size_t)pt->n, sizeof *t, "safetensors tensors");
    for (int i = 0; i < pt->n; i++) {
        const ParamInfo *p = &pt->info[i];
        t[i].name = p->name;
        t[i].data = w + p->offset;
        t[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) t[i].shape[d] = p->shape[d];
    }
    char vals[SHAPE_N_KEYS][16];
    const char *meta[2 * (SHAPE_N_KEYS + 2)];
    int n_meta = 0;
    meta[2 * n_meta] = "format", meta[2 * n_meta + 1] = "EP-VDiT", n_meta++;
    for (int i = 0; i < SHAPE_N_KEYS; i++) {
        int v = *shape_key((ModelShape *)shape, i);
        if (i == 0 && v <= 0) continue; /* F unknown (bare weights) */
        snprintf(vals[i], sizeof vals[i], "%d", v);
        meta[2 * n_meta] = SHAPE_KEY_NAMES[i], meta[2 * n_meta + 1] = vals[i], n_meta++;
    }
    meta[2 * n_meta] = "frame_embed", meta[2 * n_meta + 1] = shape_frame_embed_name(shape), n_meta++;
    st_write(path, t, pt->n, type, meta, n_meta);
    free(t);
}

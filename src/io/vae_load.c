/* Loading the VAE from diffusers safetensors (vae_load.h). */
#include "io/vae_load.h"
#include "core/die.h"
#include "io/safetensors.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const StTensor *find(const StFile *sf, const char *fmt, int a, int b) {
    char name[128];
    snprintf(name, sizeof name, fmt, a, b);
    return st_find(sf, name);
}

static const StTensor *need(const StFile *sf, const char *name, int ndim) {
    const StTensor *t = st_find(sf, name);
    if (!t) ep_die("'%s': no tensor '%s' (not a diffusers AutoencoderKL file?)", sf->path, name);
    if (t->ndim != ndim) ep_die("'%s': tensor '%s' has %d dimensions, not %d", sf->path, name, t->ndim, ndim);
    return t;
}

/* The hyper-parameters no shape shows: __metadata__, then config.json beside the file. */
static void read_settings(const StFile *sf, VaeConfig *c) {
    c->groups = 32, c->scale = 0.18215f, c->shift = 0.0f;
    const char *g = st_meta(sf, "norm_num_groups"), *s = st_meta(sf, "scaling_factor"), *sh = st_meta(sf, "shift_factor");
    if (g || s || sh) {
        if (g) c->groups = atoi(g);
        if (s) c->scale = (float)atof(s);
        if (sh) c->shift = (float)atof(sh);
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", sf->path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%sconfig.json", dir);
    FILE *f = fopen(cfg, "rb");
    if (!f) return;
    fclose(f);
    json_error_t err;
    json_t *root = json_load_file(cfg, 0, &err);
    if (!json_is_object(root)) ep_die("'%s': not a JSON object (line %d: %s)", cfg, err.line, err.text);
    json_t *cls = json_object_get(root, "_class_name");
    if (json_is_string(cls) && strcmp(json_string_value(cls), "AutoencoderKL"))
        ep_die("'%s': _class_name is '%s', not AutoencoderKL", cfg, json_string_value(cls));
    json_t *v = json_object_get(root, "norm_num_groups");
    if (v && !json_is_integer(v)) ep_die("'%s': norm_num_groups is not an integer", cfg);
    if (v) c->groups = (int)json_integer_value(v);
    v = json_object_get(root, "scaling_factor");
    if (v && !json_is_number(v)) ep_die("'%s': scaling_factor is not a number", cfg);
    if (v) c->scale = (float)json_number_value(v);
    v = json_object_get(root, "shift_factor");
    if (v && !json_is_null(v) && !json_is_number(v)) ep_die("'%s': shift_factor is not a number", cfg);
    if (json_is_number(v)) c->shift = (float)json_number_value(v);
    json_decref(root);
}

/* The configuration the tensors' shapes show. */
static void read_config(const StFile *sf, VaeConfig *c) {
    memset(c, 0, sizeof *c);
    const StTensor *t = need(sf, "encoder.conv_in.weight", 4);
    c->in_ch = (int)t->shape[1];
    for (int i = 0; i < VAE_MAX_LEVELS && (t = find(sf, "encoder.down_blocks.%d.resnets.%d.conv1.weight", i, 0)); i++)
        c->ch[i] = (int)t->shape[0], c->nlev = i + 1;
    if (c->nlev == 0) ep_die("'%s': no tensor 'encoder.down_blocks.0.resnets.0.conv1.weight'", sf->path);
    while (c->layers < VAE_MAX_LAYERS && find(sf, "encoder.down_blocks.%d.resnets.%d.conv1.weight", 0, c->layers))
        c->layers++;
    c->latent = (int)need(sf, "decoder.conv_in.weight", 4)->shape[1];
    c->out_ch = (int)need(sf, "decoder.conv_out.weight", 4)->shape[0];
    c->quant = st_find(sf, "quant_conv.weight") != NULL;
    c->post_quant = st_find(sf, "post_quant_conv.weight") != NULL;
    c->mid_attn = st_find(sf, "encoder.mid_block.attentions.0.group_norm.weight") != NULL;
    read_settings(sf, c);
    const char *bad = vae_config_check(c);
    if (bad) ep_die("'%s': impossible VAE: %s", sf->path, bad);
}

/* The file's tensor for p: its own name, or the older attention names. */
static const StTensor *lookup(const StFile *sf, const VaeParam *p) {
    const StTensor *t = st_find(sf, p->name);
    if (t) return t;
    static const char *alias[4][2] = {{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."},
                                      {".to_out.0.", ".proj_attn."}};
    for (int i = 0; i < 4; i++) {
        const char *at = strstr(p->name, alias[i][0]);
        if (!at) continue;
        char old[160];
        snprintf(old, sizeof old, "%.*s%s%s", (int)(at - p->name), p->name, alias[i][1], at + strlen(alias[i][0]));
        return st_find(sf, old);
    }
    return NULL;
}

static int shape_fits(const StTensor *t, const VaeParam *p) {
    if (t->numel != p->numel) return 0;
    for (int i = 0; i < p->ndim && i < t->ndim; i++)
        if (t->shape[i] != p->shape[i]) return 0;
    if (t->ndim == p->ndim) return 1;
    /* a Linear stored as a 1x1 conv, [C, C, 1, 1] */
    return p->ndim == 2 && t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1;
}

void vae_load(Vae *v, const char *path) {
    StFile sf;
    st_open(&sf, path);
    VaeConfig c;
    read_config(&sf, &c);
    vae_build(v, &c);
    char *used = calloc((size_t)sf.n, 1);
    if (!used) ep_die("out of memory");
    for (int i = 0; i < v->nparam; i++) {
        const VaeParam *p = &v->param[i];
        const StTensor *t = lookup(&sf, p);
        if (!t) ep_die("'%s': no tensor '%s' (the VAE its other tensors describe has one)", path, p->name);
        if (!shape_fits(t, p)) {
            char want[64], got[64];
            int n = 0;
            for (int d = 0; d < p->ndim; d++) n += snprintf(want + n, sizeof want - n, d ? ",%d" : "%d", p->shape[d]);
            n = 0;
            for (int d = 0; d < t->ndim; d++)
                n += snprintf(got + n, sizeof got - n, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            ep_die("'%s': tensor '%s' has shape [%s], expected [%s]", path, t->name, got, want);
        }
        st_read_f32(&sf, t, p->p);
        used[t - sf.t] = 1;
    }
    for (int i = 0; i < sf.n; i++)
        if (!used[i]) ep_die("'%s': tensor '%s' is not part of the VAE its other tensors describe", path, sf.t[i].name);
    free(used);
    st_close(&sf);
}

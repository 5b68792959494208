/* The input deck (docs/deck.md): INI parsed with libinih, every key in one
 * table below with its type and allowed range, so the parser, the --set
 * overrides and the error messages all come from the same place. */
#include "deck/deck.h"
#include "deck/methods.h"
#include "core/die.h"
#include "core/limits.h"
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* the key table */

typedef enum { T_INT, T_U64, T_DBL, T_STR, T_ENUM } KeyType;

typedef struct {
    const char *section, *key;
    KeyType type;
    size_t off, size;       /* field offset in Deck; buffer size for strings */
    double lo, hi;          /* numeric range */
    int lo_open, hi_open;   /* 1: the bound itself is not allowed */
    const char *choices;    /* T_ENUM: "a|b|c" (NULL: the Ent-Prog method table's names) */
} KeyDef;

#define FIELD(f) offsetof(Deck, f), sizeof(((Deck *)0)->f)
#define INT(sec, key, f, lo) {sec, key, T_INT, FIELD(f), lo, INFINITY, 0, 0, NULL}
#define INT_TO(sec, key, f, lo, hi) {sec, key, T_INT, FIELD(f), lo, hi, 0, 0, NULL}
#define U64(sec, key, f) {sec, key, T_U64, FIELD(f), 0, INFINITY, 0, 0, NULL}
#define DBL(sec, key, f, lo, lo_open, hi, hi_open) {sec, key, T_DBL, FIELD(f), lo, hi, lo_open, hi_open, NULL}
#define STR(sec, key, f) {sec, key, T_STR, FIELD(f), 0, 0, 0, 0, NULL}
#define ENUM(sec, key, f, choices) {sec, key, T_ENUM, FIELD(f), 0, 0, 0, 0, choices}

static const KeyDef KEYS[] = {
    INT("model", "F", model.F, 1),
    INT("model", "C", model.C, 1),
    INT("model", "H", model.H, 1),
    INT("model", "W", model.W, 1),
    INT("model", "p", model.p, 1),
    INT("model", "D", model.D, 1),
    INT("model", "NH", model.NH, 1),
    INT_TO("model", "L", model.L, 1, EP_MAX_BLOCKS),
    INT("model", "mlp_ratio", model.mlp_ratio, 1),
    INT("model", "Cp", model.Cp, 1),
    INT("model", "s", model.s, 1),
    INT("model", "Cg", model.Cg, 1),
    ENUM("model", "frame_embed", model.frame_embed, SHAPE_FRAME_EMBED_CHOICES),

    STR("data", "dir", data.dir),
    INT("data", "n_train", data.n_train, 1),
    INT("data", "n_val", data.n_val, 0),
    INT("data", "n_test", data.n_test, 0),
    INT("data", "frames", data.frames, 1),
    INT("data", "frame_stride", data.frame_stride, 1),
    U64("data", "seed", data.seed),
    DBL("data", "fps", data.fps, 0, 1, INFINITY, 0),
    STR("data", "vae", data.vae),

    STR("train", "out_dir", train.out_dir),
    STR("train", "init", train.init),
    U64("train", "seed", train.seed),
    INT("train", "steps", train.steps, 0),
    INT("train", "batch", train.batch, 1),
    ENUM("train", "optimizer", train.optimizer, "adamw|sgd"),
    DBL("train", "lr", train.lr, 0, 1, INFINITY, 0),
    DBL("train", "beta1", train.beta1, 0, 0, 1, 1),
    DBL("train", "beta2", train.beta2, 0, 0, 1, 1),
    DBL("train", "eps", train.eps, 0, 1, INFINITY, 0),
    DBL("train", "weight_decay", train.weight_decay, 0, 0, INFINITY, 0),
    DBL("train", "momentum", train.momentum, 0, 0, 1, 1),
    DBL("train", "grad_clip", train.grad_clip, 0, 0, INFINITY, 0),
    INT("train", "warmup", train.warmup, 0),
    ENUM("train", "lr_schedule", train.lr_schedule, "constant|cosine"),
    DBL("train", "min_lr", train.min_lr, 0, 0, INFINITY, 0),
    DBL("train", "ema", train.ema, 0, 0, 1, 1),
    DBL("train", "p_drop_ref", train.p_drop_ref, 0, 0, 1, 0),
    DBL("train", "p_drop_pose", train.p_drop_pose, 0, 0, 1, 0),
    INT("train", "log_every", train.log_every, 1),
    INT("train", "val_every", train.val_every, 0),
    INT("train", "ckpt_every", train.ckpt_every, 0),
    INT("train", "keep_ckpts", train.keep_ckpts, 0),
    INT("train", "val_batches", train.val_batches, 0),
    ENUM("train", "backend", train.backend, "cpu|cuda"),
    INT("train", "recompute", train.recompute, 0),
    INT("train", "recompute_blocks", train.recompute_blocks, 0),
    INT("train", "max_bad_steps", train.max_bad_steps, 1),

    ENUM("entprog", "method", prog.method, NULL), /* choices: the method table (deck/methods.h) */
    INT("entprog", "stages", prog.stages, 1),
    STR("entprog", "grid", prog.grid),
    INT("entprog", "max_candidates", prog.max_candidates, 1),
    ENUM("entprog", "search", prog.search, "supernet|trials"),
    INT("entprog", "search_steps", prog.search_steps, 0), /* 0: one epoch of the training split */
    INT("entprog", "probe_batches", prog.probe_batches, 1),
    INT("entprog", "static_m", prog.static_m, 0),
    INT("entprog", "cei_n", prog.cei_n, 1),
    ENUM("entprog", "timing", prog.timing, "wall|cost"),
    INT("entprog", "train_inputs", prog.train_inputs, 0),
    INT("entprog", "reverse", prog.reverse, 0),
    U64("entprog", "seed", prog.seed),
    ENUM("entprog", "sampling", prog.sampling, "uniform|balanced"),
    INT("entprog", "probe_videos", prog.probe_videos, 0),
};
#define NKEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

static void set_defaults(Deck *d) {
    memset(d, 0, sizeof *d);
    d->model = (ModelShape){.F = 4, .C = 3, .H = 16, .W = 16, .p = 2, .D = 32, .NH = 2, .L = 3,
                            .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 8, .frame_embed = "input"};
    DataConfig *a = &d->data;
    snprintf(a->dir, sizeof a->dir, "data");
    a->n_train = 16, a->n_val = 4, a->n_test = 4;
    a->frames = 16, a->frame_stride = 1, a->seed = 1, a->fps = 8;
    TrainConfig *t = &d->train;
    snprintf(t->out_dir, sizeof t->out_dir, "run");
    t->seed = 1, t->steps = 100, t->batch = 2;
    snprintf(t->optimizer, sizeof t->optimizer, "adamw");
    t->lr = 1e-4, t->beta1 = 0.9, t->beta2 = 0.999, t->eps = 1e-8;
    t->weight_decay = 0, t->momentum = 0.9, t->grad_clip = 1.0, t->warmup = 0;
    snprintf(t->lr_schedule, sizeof t->lr_schedule, "constant");
    t->min_lr = 0, t->ema = 0, t->p_drop_ref = 0.1, t->p_drop_pose = 0.1;
    t->log_every = 10, t->val_every = 50, t->ckpt_every = 50, t->keep_ckpts = 2, t->val_batches = 2;
    t->max_bad_steps = 5;
    snprintf(t->backend, sizeof t->backend, "cpu");
    ProgConfig *g = &d->prog;
    snprintf(g->method, sizeof g->method, "full");
    g->stages = 4, g->max_candidates = 3, g->search_steps = 0, g->probe_batches = 4;
    snprintf(g->sampling, sizeof g->sampling, "uniform");
    g->probe_videos = 4;
    g->static_m = 0, g->cei_n = 1000, g->train_inputs = 0, g->seed = 1;
    snprintf(g->search, sizeof g->search, "supernet");
    snprintf(g->timing, sizeof g->timing, "wall");
}

/* ------------------------------------------------------------------------- */
/* one key = value */

static int known_section(const char *s) {
    return !strcmp(s, "model") || !strcmp(s, "data") || !strcmp(s, "train") || !strcmp(s, "entprog");
}

/* "within [0, 1)", ">= 1", "> 0": the range of a numeric key, for messages. */
static void range_str(const KeyDef *k, char *buf, size_t n) {
    if (isinf(k->hi)) snprintf(buf, n, "%s %g", k->lo_open ? ">" : ">=", k->lo);
    else snprintf(buf, n, "within %c%g, %g%c", k->lo_open ? '(' : '[', k->lo, k->hi, k->hi_open ? ')' : ']');
}

static int in_range(const KeyDef *k, double v) {
    if (v < k->lo || (k->lo_open && v == k->lo)) return 0;
    if (v > k->hi || (k->hi_open && v == k->hi)) return 0;
    return 1;
}

static int enum_has(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        size_t len = strcspn(c, "|");
        if (len == n && n > 0 && !strncmp(c, v, n)) return 1;
        c += len + (c[len] == '|');
    }
    return 0;
}

/* Parses value into the field of key k. Returns NULL or a message naming the key. */
static const char *set_value(Deck *d, const KeyDef *k, const char *value) {
    static char msg[DECK_PATH_MAX + 256];
    char range[64];
    void *field = (char *)d + k->off;
    char *end;
    errno = 0;
    switch (k->type) {
    case T_INT: {
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno) goto not_int;
        range_str(k, range, sizeof range);
        if (v > INT_MAX || !in_range(k, (double)v)) goto out_of_range;
        *(int *)field = (int)v;
        return NULL;
    }
    case T_U64: {
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || errno || strchr(value, '-')) goto not_int;
        *(uint64_t *)field = (uint64_t)v;
        return NULL;
    }
    case T_DBL: {
        double v = strtod(value, &end);
        if (!*value || *end || errno || !isfinite(v)) {
            snprintf(msg, sizeof msg, "%s.%s = '%s' is not a finite number", k->section, k->key, value);
            return msg;
        }
        range_str(k, range, sizeof range);
        if (!in_range(k, v)) goto out_of_range;
        *(double *)field = v;
        return NULL;
    }
    case T_ENUM: {
        const char *choices = k->choices ? k->choices : prog_method_choices();
        if (!enum_has(choices, value)) {
            snprintf(msg, sizeof msg, "%s.%s = '%s' is not one of %s", k->section, k->key, value, choices);
            return msg;
        }
    }
        /* an allowed choice is stored like a string */
        /* fall through */
    case T_STR:
        if (strlen(value) >= k->size) {
            snprintf(msg, sizeof msg, "%s.%s is longer than %zu characters", k->section, k->key, k->size - 1);
            return msg;
        }
        memset(field, 0, k->size); /* no stale tail: decks compare with memcmp */
        memcpy(field, value, strlen(value));
        return NULL;
    }
    return NULL;
not_int:
    snprintf(msg, sizeof msg, "%s.%s = '%s' is not an integer%s", k->section, k->key, value,
             k->type == T_U64 ? " >= 0" : "");
    return msg;
out_of_range:
    snprintf(msg, sizeof msg, "%s.%s = '%s' is out of range (must be %s)", k->section, k->key, value, range);
    return msg;
}

static const char *set_key(Deck *d, const char *section, const char *key, const char *value) {
    static char msg[256];
    if (!known_section(section)) {
        if (!*section) snprintf(msg, sizeof msg, "key '%s' is outside any section", key);
        else snprintf(msg, sizeof msg, "unknown section [%s] (key '%s'; sections: model, data, train)", section, key);
        return msg;
    }
    for (int i = 0; i < NKEYS; i++)
        if (!strcmp(KEYS[i].section, section) && !strcmp(KEYS[i].key, key)) return set_value(d, &KEYS[i], value);
    snprintf(msg, sizeof msg, "unknown key '%s' in section [%s]", key, section);
    return msg;
}

/* Checks that involve several keys; run after parsing and after every override. */
static void check_deck(const Deck *d, const char *label) {
    const char *why = shape_check(&d->model, 1);
    if (why) ep_die("deck '%s': impossible model shape: %s", label, why);
    long long need = (long long)(d->model.F - 1) * d->data.frame_stride + 1;
    if (d->data.frames < need)
        ep_die("deck '%s': data.frames = %d is too few for model.F = %d frames at data.frame_stride = %d (need >= %lld)",
               label, d->data.frames, d->model.F, d->data.frame_stride, need);
    if (!d->train.out_dir[0]) ep_die("deck '%s': train.out_dir must not be empty", label);
    if (d->train.val_every > 0 && d->train.val_batches < 1)
        ep_die("deck '%s': train.val_every = %d needs train.val_batches >= 1 (or val_every = 0: no validation)",
               label, d->train.val_every);
    if (d->train.val_every > 0 && d->data.n_val < 1)
        ep_die("deck '%s': train.val_every = %d needs data.n_val >= 1 validation videos", label, d->train.val_every);
    if (d->train.recompute > 1) ep_die("deck '%s': train.recompute = %d must be 0 or 1", label, d->train.recompute);
    if (d->train.recompute_blocks > d->model.L - 1)
        ep_die("deck '%s': train.recompute_blocks = %d: at most %d (model.L - 1: the last block keeps its own "
               "activations, the others recompute into them); 0 recomputes every block", label,
               d->train.recompute_blocks, d->model.L - 1);
    if (d->train.recompute_blocks > 0 && !d->train.recompute)
        ep_die("deck '%s': train.recompute_blocks = %d needs train.recompute = 1 (it says how many blocks recompute)",
               label, d->train.recompute_blocks);
    if (d->prog.reverse > 1) ep_die("deck '%s': entprog.reverse = %d must be 0 or 1", label, d->prog.reverse);
    if (d->prog.train_inputs > 1)
        ep_die("deck '%s': entprog.train_inputs = %d must be 0 or 1", label, d->prog.train_inputs);
    if (d->prog.static_m > d->model.L)
        ep_die("deck '%s': entprog.static_m = %d is more than model.L = %d blocks", label, d->prog.static_m, d->model.L);
    if (d->train.min_lr > d->train.lr)
        ep_die("deck '%s': train.min_lr = %g is above train.lr = %g", label, d->train.min_lr, d->train.lr);
}

/* ------------------------------------------------------------------------- */
/* parsing with inih through our own line reader, which counts lines (the
 * packaged inih passes no line numbers to handlers) and checks section names
 * (inih never calls the handler for an empty section). */

typedef struct {
    Deck *d;
    const char *p;      /* rest of the text */
    int line;           /* lines handed to inih so far */
    int err_line;       /* first error found by us, 0 if none */
    char err[512];
} Parser;

static void parser_error(Parser *ps, const char *msg) {
    if (ps->err_line) return; /* keep the first */
    ps->err_line = ps->line;
    snprintf(ps->err, sizeof ps->err, "%s", msg);
}

static void check_section_line(Parser *ps, const char *line) {
    while (*line == ' ' || *line == '\t') line++;
    if (*line != '[') return;
    const char *close = strchr(line, ']');
    if (!close) return; /* inih reports it as a syntax error */
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(close - line - 1), line + 1);
    if (!known_section(name)) {
        char msg[256];
        snprintf(msg, sizeof msg, "unknown section [%s] (sections: model, data, train)", name);
        parser_error(ps, msg);
    }
}

static char *read_line(char *buf, int num, void *stream) {
    Parser *ps = stream;
    if (!*ps->p || ps->err_line) return NULL;
    size_t len = strcspn(ps->p, "\n");
    size_t take = len + (ps->p[len] == '\n');
    ps->line++;
    if (take + 1 > (size_t)num) {
        char msg[64];
        snprintf(msg, sizeof msg, "line longer than %d characters", num - 3);
        parser_error(ps, msg);
        return NULL;
    }
    memcpy(buf, ps->p, take);
    buf[take] = 0;
    ps->p += take;
    check_section_line(ps, buf);
    return ps->err_line ? NULL : buf;
}

static int on_key(void *user, const char *section, const char *key, const char *value) {
    Parser *ps = user;
    const char *err = set_key(ps->d, section, key, value);
    if (err) parser_error(ps, err);
    return err == NULL;
}

void deck_parse_string(Deck *d, const char *text, const char *label) {
    set_defaults(d);
    if (strlen(label) >= sizeof d->path) ep_die("deck path '%s' is too long", label);
    snprintf(d->path, sizeof d->path, "%s", label);
    Parser ps = {.d = d, .p = text};
    int ret = ini_parse_stream(read_line, &ps, on_key, &ps);
    /* Report the earliest problem: ours (bad key/value) or inih's (syntax). */
    if (ps.err_line && (ret <= 0 || ps.err_line <= ret))
        ep_die("deck '%s' line %d: %s", label, ps.err_line, ps.err);
    if (ret > 0) ep_die("deck '%s' line %d: syntax error (expected [section], key = value, or a comment)", label, ret);
    if (ret < 0) ep_die("deck '%s': inih failed (error %d)", label, ret);
    check_deck(d, label);
    size_t n = strlen(text);
    d->text = ep_malloc(n + 1, "deck text");
    memcpy(d->text, text, n + 1);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) ep_die("cannot open deck '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = ep_malloc(cap, "deck text");
    for (size_t got; (got = fread(buf + n, 1, cap - 1 - n, f)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
        if (!buf) ep_die("out of memory reading deck '%s'", path);
    }
    if (ferror(f)) ep_die("cannot read deck '%s'", path);
    fclose(f);
    buf[n] = 0;
    if (strlen(buf) != n) ep_die("deck '%s' contains a NUL byte (not a text file?)", path);
    return buf;
}

void deck_load(Deck *d, const char *path) {
    char *text = read_file(path);
    deck_parse_string(d, text, path);
    free(text);
}

/* ------------------------------------------------------------------------- */
/* --set section.key=value */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    return s;
}

/* Appends the override to d->text as its own section block, so re-parsing the
 * stored text (a checkpoint's /config) gives exactly the deck that ran. */
static void append_override(Deck *d, const char *section, const char *key, const char *value) {
    size_t old = d->text ? strlen(d->text) : 0;
    const char *sep = old && d->text[old - 1] != '\n' ? "\n" : "";
    const char *fmt = "%s# --set %s.%s=%s\n[%s]\n%s = %s\n";
    int add = snprintf(NULL, 0, fmt, sep, section, key, value, section, key, value);
    char *t = ep_malloc(old + (size_t)add + 1, "deck text");
    if (old) memcpy(t, d->text, old);
    snprintf(t + old, (size_t)add + 1, fmt, sep, section, key, value, section, key, value);
    free(d->text);
    d->text = t;
}

void deck_override(Deck *d, const char *assignment) {
    char buf[DECK_PATH_MAX + 128];
    if (strlen(assignment) >= sizeof buf) ep_die("--set '%.60s...': too long", assignment);
    snprintf(buf, sizeof buf, "%s", assignment);
    char *eq = strchr(buf, '=');
    char *dot = eq ? memchr(buf, '.', (size_t)(eq - buf)) : NULL;
    if (!eq || !dot) ep_die("--set '%s': expected section.key=value (e.g. train.steps=20)", assignment);
    *eq = 0;
    *dot = 0;
    char *section = trim(buf), *key = trim(dot + 1), *value = trim(eq + 1);
    /* these would be read back differently from the stored text */
    if (strpbrk(value, ";\n\r")) ep_die("--set '%s': the value of %s.%s may not contain ';' or a line break", assignment, section, key);
    const char *err = set_key(d, section, key, value);
    if (err) ep_die("--set '%s': %s", assignment, err);
    char label[DECK_PATH_MAX + 160];
    snprintf(label, sizeof label, "%s' with --set '%s", d->path, assignment);
    check_deck(d, label);
    append_override(d, section, key, value);
}

void deck_free(Deck *d) {
    free(d->text);
    d->text = NULL;
}

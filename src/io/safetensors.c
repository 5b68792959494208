/* safetensors reading and writing (safetensors.h). The JSON header goes
 * through jansson; everything it says is checked against the file before a
 * single tensor byte is trusted. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64
#include "io/safetensors.h"
#include "core/finite.h"
#include "core/die.h"
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader copies bytes as they are"
#endif

static const struct { const char *name; int size; } DTYPES[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static int dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
        if (!strcmp(DTYPES[i].name, name)) return DTYPES[i].size;
    return 0;
}

static uint64_t le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* One header entry into t; dies naming it. */
static void parse_entry(const char *path, const char *name, json_t *e, StTensor *t) {
    if (!json_is_object(e)) ep_die("'%s': tensor '%s': header entry is not an object", path, name);
    json_t *dt = json_object_get(e, "dtype"), *sh = json_object_get(e, "shape"), *off = json_object_get(e, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) || json_array_size(off) != 2)
        ep_die("'%s': tensor '%s': header entry needs \"dtype\" (string), \"shape\" (array) and "
               "\"data_offsets\" ([begin, end])", path, name);
    t->name = strdup(name);
    snprintf(t->dtype, sizeof t->dtype, "%s", json_string_value(dt));
    int size = dtype_size(json_string_value(dt));
    if (!size) ep_die("'%s': tensor '%s' has unknown dtype '%s'", path, name, json_string_value(dt));
    if (json_array_size(sh) > ST_MAX_DIM)
        ep_die("'%s': tensor '%s' has %zu dimensions (at most %d)", path, name, json_array_size(sh), ST_MAX_DIM);
    t->ndim = (int)json_array_size(sh);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(sh, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            ep_die("'%s': tensor '%s': shape[%d] is not a non-negative integer", path, name, i);
        t->shape[i] = json_integer_value(d);
        if (t->shape[i] && numel > (UINT64_MAX >> 4) / (uint64_t)t->shape[i])
            ep_die("'%s': tensor '%s': shape is impossibly large", path, name);
        numel *= (uint64_t)t->shape[i];
    }
    t->numel = (size_t)numel;
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (!json_is_integer(b) || !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b))
        ep_die("'%s': tensor '%s': data_offsets must be integers 0 <= begin <= end", path, name);
    t->begin = (uint64_t)json_integer_value(b);
    t->end = (uint64_t)json_integer_value(en);
    if (t->end - t->begin != numel * (uint64_t)size)
        ep_die("'%s': tensor '%s': data_offsets [%llu, %llu) hold %llu bytes but its shape and dtype %s need %llu",
               path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
               (unsigned long long)(t->end - t->begin), t->dtype, (unsigned long long)(numel * (uint64_t)size));
}

static int by_begin(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Every range inside the data and no two non-empty ranges sharing a byte. */
static void check_ranges(const StFile *sf) {
    for (int i = 0; i < sf->n; i++)
        if (sf->t[i].end > sf->data_len)
            ep_die("'%s': tensor '%s': data [%llu, %llu) runs past the end of the data (%llu bytes): "
                   "the file is truncated or its header lies", sf->path, sf->t[i].name,
                   (unsigned long long)sf->t[i].begin, (unsigned long long)sf->t[i].end,
                   (unsigned long long)sf->data_len);
    const StTensor **o = ep_malloc((size_t)(sf->n + 1) * sizeof *o, "safetensors order");
    int k = 0;
    for (int i = 0; i < sf->n; i++)
        if (sf->t[i].end > sf->t[i].begin) o[k++] = &sf->t[i];
    qsort(o, (size_t)k, sizeof *o, by_begin);
    const StTensor *last = NULL; /* the range reaching furthest so far */
    for (int i = 0; i < k; i++) {
        if (last && o[i]->begin < last->end)
            ep_die("'%s': tensors '%s' and '%s' overlap in the data (the header's offsets lie)", sf->path,
                   last->name, o[i]->name);
        if (!last || o[i]->end > last->end) last = o[i];
    }
    free(o);
}

void st_open(StFile *sf, const char *path) {
    memset(sf, 0, sizeof *sf);
    sf->path = path;
    sf->f = fopen(path, "rb");
    if (!sf->f) ep_die("cannot read '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(sf->f), &st) != 0) ep_die("cannot stat '%s': %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    unsigned char lenb[8];
    if (size < 8 || fread(lenb, 1, 8, sf->f) != 8) ep_die("'%s' is too short for a safetensors file", path);
    uint64_t n = le64(lenb);
    if (n > ST_HEADER_MAX)
        ep_die("'%s': safetensors header length %llu is over the %u MiB limit (corrupt, or not a safetensors file)",
               path, (unsigned long long)n, ST_HEADER_MAX >> 20);
    if (n < 2 || n > size - 8)
        ep_die("'%s': safetensors header length %llu does not fit the file of %llu bytes (truncated?)", path,
               (unsigned long long)n, (unsigned long long)size);
    char *text = ep_malloc((size_t)n, "safetensors header");
    if (fread(text, 1, (size_t)n, sf->f) != n) ep_die("'%s': cannot read its %llu-byte header", path, (unsigned long long)n);
    json_error_t err;
    json_t *root = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!root) ep_die("'%s': safetensors header is not valid JSON: %s (byte %d)", path, err.text, err.position);
    if (!json_is_object(root)) ep_die("'%s': safetensors header is not a JSON object", path);
    sf->root = root;
    sf->data_start = 8 + n;
    sf->data_len = size - 8 - n;
    sf->t = ep_calloc(json_object_size(root) + 1, sizeof(StTensor), "safetensors tensors");
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val)) ep_die("'%s': __metadata__ is not an object", path);
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) if (!json_is_string(mv))
                ep_die("'%s': __metadata__ '%s' is not a string", path, mk);
            sf->meta = val;
            continue;
        }
        parse_entry(path, key, val, &sf->t[sf->n++]);
    }
    check_ranges(sf);
}

void st_close(StFile *sf) {
    if (sf->f) fclose(sf->f);
    for (int i = 0; i < sf->n; i++) free(sf->t[i].name);
    free(sf->t);
    if (sf->root) json_decref((json_t *)sf->root);
    memset(sf, 0, sizeof *sf);
}

const StTensor *st_find(const StFile *sf, const char *name) {
    for (int i = 0; i < sf->n; i++)
        if (!strcmp(sf->t[i].name, name)) return &sf->t[i];
    return NULL;
}

const char *st_meta(const StFile *sf, const char *key) {
    if (!sf->meta) return NULL;
    json_t *v = json_object_get((json_t *)sf->meta, key);
    return v ? json_string_value(v) : NULL;
}

static float f16_to_f32(uint16_t h) {
    int e = (h >> 10) & 31, man = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)man, -24)                      /* zero, subnormal */
              : e == 31 ? (man ? NAN : INFINITY)
                        : ldexpf((float)(man | 0x400), e - 25);    /* (1 + man/1024) 2^(e-15) */
    return (h & 0x8000) ? -v : v;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

void st_read_f32(const StFile *sf, const StTensor *t, float *out) {
    int f32 = !strcmp(t->dtype, "F32"), f16 = !strcmp(t->dtype, "F16"), bf16 = !strcmp(t->dtype, "BF16");
    if (!f32 && !f16 && !bf16)
        ep_die("'%s': tensor '%s' has dtype %s; entprog reads F32, F16 or BF16", sf->path, t->name, t->dtype);
    if (fseeko(sf->f, (off_t)(sf->data_start + t->begin), SEEK_SET) != 0)
        ep_die("'%s': tensor '%s': cannot seek: %s", sf->path, t->name, strerror(errno));
    if (f32) {
        if (fread(out, 4, t->numel, sf->f) != t->numel) ep_die("'%s': tensor '%s': short read", sf->path, t->name);
    } else {
        enum { CHUNK = 1 << 15 };
        uint16_t buf[CHUNK];
        for (size_t i = 0; i < t->numel; i += CHUNK) {
            size_t k = t->numel - i < CHUNK ? t->numel - i : CHUNK;
            if (fread(buf, 2, k, sf->f) != k) ep_die("'%s': tensor '%s': short read", sf->path, t->name);
            for (size_t j = 0; j < k; j++) out[i + j] = f16 ? f16_to_f32(buf[j]) : bf16_to_f32(buf[j]);
        }
    }
    size_t i = first_nonfinite(out, t->numel);
    if (i < t->numel)
        ep_die("'%s': tensor '%s' holds a non-finite value (%s) at element %zu", sf->path, t->name,
               isnan(out[i]) ? "NaN" : "Inf", i);
}

/* Round to nearest even; a NaN stays a (quiet) NaN. */
static uint16_t f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* A failed write removes the partial "<path>.tmp", so nothing half-written stays behind. */
static void write_failed(const char *tmp) {
    int e = errno;
    unlink(tmp);
    ep_die("cannot write '%s': %s", tmp, e ? strerror(e) : "disk full?");
}

static void write_all(FILE *f, const void *p, size_t n, const char *tmp) {
    if (fwrite(p, 1, n, f) != n) write_failed(tmp);
}

void st_write(const char *path, const StOut *t, int n, StOutType type, const char *const *meta, int n_meta) {
    size_t esize = type == ST_OUT_BF16 ? 2 : 4;
    json_t *root = json_object();
    if (n_meta > 0) {
        json_t *m = json_object();
        for (int i = 0; i < n_meta; i++) json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1]));
        json_object_set_new(root, "__metadata__", m);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        json_t *sh = json_array();
        for (int d = 0; d < t[i].ndim; d++) {
            json_array_append_new(sh, json_integer(t[i].shape[d]));
            numel *= (size_t)t[i].shape[d];
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(type == ST_OUT_BF16 ? "BF16" : "F32"));
        json_object_set_new(e, "shape", sh);
        json_t *o = json_array();
        json_array_append_new(o, json_integer((json_int_t)off));
        off += numel * esize;
        json_array_append_new(o, json_integer((json_int_t)off));
        json_object_set_new(e, "data_offsets", o);
        if (json_object_set_new(root, t[i].name, e) != 0) ep_die("internal: cannot add tensor '%s' to the header", t[i].name);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) ep_die("internal: cannot encode the safetensors header of '%s'", path);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8; /* data starts 8-byte aligned */

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) ep_die("cannot write '%s': %s", tmp, strerror(errno));
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    write_all(f, lenb, 8, tmp);
    write_all(f, text, len, tmp);
    for (size_t i = len; i < padded; i++) write_all(f, " ", 1, tmp);
    free(text);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        if (type == ST_OUT_F32) {
            write_all(f, t[i].data, numel * 4, tmp);
            continue;
        }
        enum { CHUNK = 1 << 15 };
        uint16_t buf[CHUNK];
        for (size_t j = 0; j < numel; j += CHUNK) {
            size_t k = numel - j < CHUNK ? numel - j : CHUNK;
            for (size_t q = 0; q < k; q++) buf[q] = f32_to_bf16(t[i].data[j + q]);
            write_all(f, buf, k * 2, tmp);
        }
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) write_failed(tmp);
    if (fclose(f) != 0) write_failed(tmp);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        ep_die("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    }
}

int st_is_safetensors(const char *path) {
    size_t n = strlen(path), k = strlen(".safetensors");
    if (n >= k && !strcmp(path + n - k, ".safetensors")) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[9];
    int yes = fread(b, 1, 9, f) == 9 && b[8] == '{' && le64(b) <= ST_HEADER_MAX;
    fclose(f);
    return yes;
}

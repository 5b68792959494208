/* safetensors files (the PyTorch ecosystem's weight format): 8 bytes of
 * little-endian header length N, N bytes of JSON header (parsed by jansson),
 * then the raw tensor bytes. The header maps each tensor name to its dtype,
 * shape and [begin, end) byte range in the data; "__metadata__" maps strings
 * to strings. st_open checks the whole header against the file before
 * anything is read, so a lying header dies there, naming the tensor and file. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ST_MAX_DIM 8
#define ST_HEADER_MAX (100u << 20) /* the limit of the reference implementation */

typedef struct {
    char *name;
    char dtype[12];    /* "F32", "BF16", ... */
    int ndim;
    int64_t shape[ST_MAX_DIM];
    size_t numel;
    uint64_t begin, end; /* byte range in the data section */
} StTensor;

typedef struct {
    const char *path;
    FILE *f;
    uint64_t data_start, data_len;
    int n;
    StTensor *t;          /* in header order */
    void *meta;           /* jansson object of __metadata__, or NULL */
    void *root;           /* the parsed header */
} StFile;

/* Opens and validates: header length, JSON, every entry (dtype known, shape,
 * offsets the size of the shape, inside the data, no two overlapping). Dies
 * with one line naming the file and, where there is one, the tensor. */
void st_open(StFile *sf, const char *path);
void st_close(StFile *sf);
/* The tensor called name, or NULL. */
const StTensor *st_find(const StFile *sf, const char *name);
/* A __metadata__ value, or NULL. */
const char *st_meta(const StFile *sf, const char *key);
/* Reads a F32, F16 or BF16 tensor as float32 into out (t->numel floats).
 * Dies naming the tensor on any other dtype, a short read, or a NaN/Inf. */
void st_read_f32(const StFile *sf, const StTensor *t, float *out);

/* One tensor to write: float32 data, row-major. */
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[ST_MAX_DIM];
} StOut;

typedef enum { ST_OUT_F32, ST_OUT_BF16 } StOutType;

/* Writes the tensors in the given order (data offsets increasing, header
 * padded with spaces to a multiple of 8) with the metadata pairs
 * meta[2i] -> meta[2i+1], to "<path>.tmp", then renames it to path. BF16
 * rounds to nearest even. Dies naming the file on any write error. */
void st_write(const char *path, const StOut *t, int n, StOutType type, const char *const *meta, int n_meta);

/* Whether path is a safetensors file: its name ends in ".safetensors", or its
 * ninth byte opens the JSON header (an HDF5 file starts with its signature). */
int st_is_safetensors(const char *path);

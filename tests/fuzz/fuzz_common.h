/* Shared by the libFuzzer targets (tests/fuzz/): the fuzzer's bytes as a
 * stream of choices, structure-aware mutations of an HDF5 file (so inputs
 * reach entprog's own checks instead of stopping in HDF5's parser), and the
 * cleanup after ep_die jumped back (core/die.h: ep_die_jump). */
#pragma once
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const uint8_t *p;
    size_t n, at;
} Bytes;

static unsigned next_byte(Bytes *b) { return b->at < b->n ? b->p[b->at++] : 0; }
static unsigned pick(Bytes *b, unsigned n) { return n ? next_byte(b) % n : 0; }
static int bytes_left(const Bytes *b) { return b->at < b->n; }

/* The valid file each input starts from, copied afresh. */
static void copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

/* Closes every HDF5 object left open by a load that died half way. */
static void h5_close_all(void) {
    hid_t ids[512];
    ssize_t n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR, 512, ids);
    for (ssize_t i = 0; i < n; i++) {
        switch (H5Iget_type(ids[i])) {
        case H5I_DATASET: H5Dclose(ids[i]); break;
        case H5I_GROUP: H5Gclose(ids[i]); break;
        case H5I_DATATYPE: H5Tclose(ids[i]); break;
        case H5I_ATTR: H5Aclose(ids[i]); break;
        default: break;
        }
    }
    n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_FILE, 512, ids);
    for (ssize_t i = 0; i < n; i++) H5Fclose(ids[i]);
}

/* Dimensions a mutation may give: ordinary, empty, and ones no file this size can hold. */
static const hsize_t DIMS[] = {0, 1, 2, 3, 4, 8, 12, 16, 32, 33, 1u << 20, (hsize_t)1 << 31, (hsize_t)1 << 40};
static const long long INTS[] = {-1, 0, 1, 2, 3, 4, 8, 16, 32, 99, 1 << 20, 2147483647LL, 2147483648LL, -2147483649LL};

static hid_t pick_type(Bytes *b) {
    hid_t t[] = {H5T_IEEE_F32LE, H5T_IEEE_F64LE, H5T_STD_U8LE, H5T_STD_I32LE, H5T_STD_I64LE, H5T_IEEE_F32BE};
    return t[pick(b, 6)];
}

/* Replaces dataset `path` by one of another rank, shape or type (chunked, so huge shapes stay small on disk). */
static void replace_dataset(hid_t f, const char *path, Bytes *b) {
    if (H5Lexists(f, path, H5P_DEFAULT) > 0) H5Ldelete(f, path, H5P_DEFAULT);
    int rank = (int)pick(b, 6);
    hsize_t dims[5], chunk[5];
    for (int i = 0; i < rank; i++) {
        dims[i] = DIMS[pick(b, sizeof DIMS / sizeof *DIMS)];
        chunk[i] = dims[i] < 4 ? (dims[i] ? dims[i] : 1) : 4;
    }
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int empty = 0;
    for (int i = 0; i < rank; i++) empty |= dims[i] == 0;
    if (rank && !empty) H5Pset_chunk(dcpl, rank, chunk);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, path, pick_type(b), sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0) H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

/* Writes a non-finite or extreme value into the first element of a float dataset. */
static void poison_dataset(hid_t f, const char *path, Bytes *b) {
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return;
    hid_t sp = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    if (rank > 0 && n > 0) {
        hsize_t at[8] = {0}, one = 1;
        for (int i = 0; i < rank && i < 8; i++) at[i] = 0;
        H5Sselect_elements(sp, H5S_SELECT_SET, 1, at);
        hid_t ms = H5Screate_simple(1, &one, NULL);
        double vals[] = {NAN, INFINITY, -INFINITY, 1e38, -0.0};
        double v = vals[pick(b, 5)];
        H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, sp, H5P_DEFAULT, &v);
        H5Sclose(ms);
    }
    H5Sclose(sp);
    H5Dclose(d);
}

static void set_int_attr(hid_t f, const char *obj, const char *name, Bytes *b) {
    if (H5Lexists(f, obj, H5P_DEFAULT) <= 0 && strcmp(obj, "/")) return;
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (o < 0) return;
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    unsigned how = pick(b, 4);
    if (how < 3) { /* an integer, a float or a string where an integer belongs */
        hid_t sp = H5Screate(H5S_SCALAR);
        long long v = INTS[pick(b, sizeof INTS / sizeof *INTS)];
        double dv = (double)v + 0.5;
        hid_t type = how == 0 ? H5T_STD_I64LE : how == 1 ? H5T_IEEE_F64LE : H5T_C_S1;
        hid_t a = H5Acreate2(o, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            if (how == 0) H5Awrite(a, H5T_NATIVE_LLONG, &v);
            else if (how == 1) H5Awrite(a, H5T_NATIVE_DOUBLE, &dv);
            else H5Awrite(a, H5T_C_S1, "x");
            H5Aclose(a);
        }
        H5Sclose(sp);
    } /* how == 3: the attribute is gone */
    H5Oclose(o);
}

/* Applies up to 6 mutations chosen by the bytes to the file at path: delete
 * or replace a dataset, poison a value, set or drop an attribute. */
static void mutate_file(const char *path, const char *const *dsets, int n_dsets, const char *const *attrs, int n_attrs,
                        Bytes *b) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) return;
    int n_ops = 1 + (int)pick(b, 6);
    for (int k = 0; k < n_ops && bytes_left(b); k++) {
        unsigned op = pick(b, 4);
        if (op == 0 && n_dsets) {
            const char *d = dsets[pick(b, n_dsets)];
            if (H5Lexists(f, d, H5P_DEFAULT) > 0) H5Ldelete(f, d, H5P_DEFAULT);
        } else if (op == 1 && n_dsets) {
            replace_dataset(f, dsets[pick(b, n_dsets)], b);
        } else if (op == 2 && n_dsets) {
            poison_dataset(f, dsets[pick(b, n_dsets)], b);
        } else if (n_attrs) { /* "obj@name" */
            char obj[256];
            const char *a = attrs[pick(b, n_attrs)], *at = strchr(a, '@');
            snprintf(obj, sizeof obj, "%.*s", (int)(at - a), a);
            set_int_attr(f, obj, at + 1, b);
        }
    }
    H5Fclose(f);
}

/* Thin HDF5 helpers: every failure is reported with the file and dataset name.
 * Files are opened through the MPI-IO driver when `comm` is not MPI_COMM_NULL. */
#pragma once
#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* Open for reading; dies naming the file if it is missing or not HDF5. */
hid_t h5_open_read(const char *path, MPI_Comm comm);
/* Open an existing file for reading and writing (collectively with a comm);
 * dies naming the file. */
hid_t h5_open_rw(const char *path, MPI_Comm comm);
/* Create (truncate) for writing. Until h5_close the file counts as
 * incomplete: a fatal error on the way removes it (core/die.h). */
hid_t h5_create(const char *path, MPI_Comm comm);
/* "'<file>': <reason>" for a write into obj's file that just failed (call
 * with errno as the failed call left it; 0: the disk is looked at). */
const char *h5_write_failure(hid_t obj, char *buf, size_t n);
/* Closes; for a file made by h5_create, a failure to finish it dies naming it. */
void h5_close(hid_t f);

int h5_exists(hid_t loc, const char *path); /* dataset or group path, intermediate groups allowed */
/* Rank and dims of a dataset; dies naming it when absent. Returns rank. */
int h5_dims(hid_t f, const char *file_label, const char *dset, hsize_t *dims, int maxrank);

/* Whole-dataset reads with shape checks: the dataset must have exactly `n`
 * elements in `rank` dims equal to `dims` (dims may be NULL to only check n). */
void h5_read_f32(hid_t f, const char *file_label, const char *dset, float *out, int rank, const hsize_t *dims);
void h5_read_i32(hid_t f, const char *file_label, const char *dset, int32_t *out, int rank, const hsize_t *dims);
void h5_read_u8(hid_t f, const char *file_label, const char *dset, uint8_t *out, int rank, const hsize_t *dims);
void h5_read_f64(hid_t f, const char *file_label, const char *dset, double *out, int rank, const hsize_t *dims);
double h5_read_f64_scalar(hid_t f, const char *file_label, const char *dset);

/* Whole-dataset writes (creates intermediate groups). With MPI-IO every rank
 * must call; only rank `writer` transfers data, collectively. */
void h5_write_f32(hid_t f, const char *dset, const float *data, int rank, const hsize_t *dims, int writer);
void h5_write_i32(hid_t f, const char *dset, const int32_t *data, int rank, const hsize_t *dims, int writer);
void h5_write_u8(hid_t f, const char *dset, const uint8_t *data, int rank, const hsize_t *dims, int writer);
void h5_write_f64(hid_t f, const char *dset, const double *data, int rank, const hsize_t *dims, int writer);

/* Elements [a, b) of a tensor's row-major flattening, as a union of at most
 * 2*rank+1 hyperslabs (a checkpoint shard). Every rank of the file's
 * communicator calls h5_create_f32 for the dataset, then h5_write_f32_range
 * with its own (possibly empty) range: the transfer is collective. */
void h5_create_f32(hid_t f, const char *dset, int rank, const hsize_t *dims);
void h5_write_f32_range(hid_t f, const char *dset, const float *data, hsize_t a, hsize_t b);
void h5_read_f32_range(hid_t f, const char *file_label, const char *dset, float *out, int rank, const hsize_t *dims,
                       hsize_t a, hsize_t b);

/* Attributes on an object path ("/" for root). */
void h5_attr_int(hid_t f, const char *obj, const char *name, long long v);
void h5_attr_double(hid_t f, const char *obj, const char *name, double v);
void h5_attr_str(hid_t f, const char *obj, const char *name, const char *v);
void h5_attr_u64_array(hid_t f, const char *obj, const char *name, const uint64_t *v, int n);
int h5_has_attr(hid_t f, const char *obj, const char *name);
long long h5_get_attr_int(hid_t f, const char *file_label, const char *obj, const char *name);
double h5_get_attr_double(hid_t f, const char *file_label, const char *obj, const char *name);
void h5_get_attr_u64_array(hid_t f, const char *file_label, const char *obj, const char *name, uint64_t *v, int n);
/* Returns a malloc'd string. */
char *h5_get_attr_str(hid_t f, const char *file_label, const char *obj, const char *name);

/* Silence HDF5's own error stack printing (we print our own messages). */
void h5_quiet(void);

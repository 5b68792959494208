#include "io/h5util.h"
#include "core/die.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* "'<file>'" and the system's reason, for a failed write: HDF5's own error
 * stack is silenced (h5_quiet), the errno of the failed write() is not */
const char *h5_write_failure(hid_t obj, char *buf, size_t n) {
    char name[512] = "?";
    if (H5Fget_name(obj, name, sizeof name) < 0) snprintf(name, sizeof name, "?");
    int e = errno;
    if (e) {
        snprintf(buf, n, "'%s': %s", name, strerror(e));
        return buf;
    }
    /* MPI-IO reported the failure its own way: look at the disk ourselves */
    char dir[512];
    snprintf(dir, sizeof dir, "%s", name);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    struct statvfs v;
    if (statvfs(dir, &v) == 0 && (double)v.f_bavail * v.f_frsize < 4.0 * 1048576)
        snprintf(buf, n, "'%s': no space left on the device (%.0f KiB free in '%s')", name,
                 (double)v.f_bavail * v.f_frsize / 1024, dir);
    else
        snprintf(buf, n, "'%s': write error (I/O error or quota?)", name);
    return buf;
}
#define WHY(obj) h5_write_failure(obj, why, sizeof why)

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static hid_t fapl_for(MPI_Comm comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (comm != MPI_COMM_NULL) H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    return fapl;
}

hid_t h5_open_read(const char *path, MPI_Comm comm) {
    h5_quiet();
    FILE *probe = fopen(path, "rb");
    if (!probe) ep_die("cannot open '%s': no such file or not readable", path);
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) ep_die("'%s' is not an HDF5 file", path);
    hid_t fapl = fapl_for(comm);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) ep_die("cannot open HDF5 file '%s' (corrupt or truncated?)", path);
    return f;
}

hid_t h5_open_rw(const char *path, MPI_Comm comm) {
    h5_quiet();
    hid_t fapl = fapl_for(comm);
    errno = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0) ep_die("cannot open '%s' for writing: %s", path, errno ? strerror(errno) : "not an HDF5 file or not writable?");
    return f;
}

/* Files made by h5_create and not yet closed: incomplete until h5_close. */
#define MAX_CREATED 8
static struct {
    hid_t f;
    int partial;
    char path[512];
} created[MAX_CREATED] = {[0 ... MAX_CREATED - 1] = {-1, -1, ""}};

hid_t h5_create(const char *path, MPI_Comm comm) {
    h5_quiet();
    hid_t fapl = fapl_for(comm);
    errno = 0;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) ep_die("cannot create '%s': %s", path, errno ? strerror(errno) : "folder missing or not writable?");
    for (int i = 0; i < MAX_CREATED; i++)
        if (created[i].f < 0) {
            created[i].f = f;
            created[i].partial = ep_partial_begin(path); /* removed if the process dies before h5_close */
            snprintf(created[i].path, sizeof created[i].path, "%s", path);
            break;
        }
    return f;
}

void h5_close(hid_t f) {
    for (int i = 0; i < MAX_CREATED; i++)
        if (created[i].f == f) { /* a file we wrote: its last data reaches the disk here */
            errno = 0;
            if (H5Fclose(f) < 0)
                ep_die("cannot finish writing '%s': %s", created[i].path, errno ? strerror(errno) : "disk full or I/O error?");
            ep_partial_done(created[i].partial);
            created[i].f = -1;
            return;
        }
    H5Fclose(f);
}

int h5_exists(hid_t loc, const char *path) {
    /* H5Lexists needs every intermediate link to exist: walk the path. */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            if (c == 0) return 1;
            *p = c;
        }
    }
}

int h5_dims(hid_t f, const char *file_label, const char *dset, hsize_t *dims, int maxrank) {
    if (!h5_exists(f, dset)) ep_die("'%s' has no dataset %s", file_label, dset);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) ep_die("'%s': %s is not a dataset", file_label, dset);
    hid_t s = H5Dget_space(d);
    int r = H5Sget_simple_extent_ndims(s);
    if (r > maxrank) ep_die("'%s': %s has rank %d, more than %d", file_label, dset, r, maxrank);
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
    return r;
}

static void shape_str(char *buf, int n, int rank, const hsize_t *dims) {
    int k = snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++) k += snprintf(buf + k, n - k, i ? ",%llu" : "%llu", (unsigned long long)dims[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Dies naming the dataset unless it exists with exactly this shape. */
static void expect_shape(hid_t f, const char *lbl, const char *dset, int rank, const hsize_t *dims) {
    hsize_t have[8];
    int r = h5_dims(f, lbl, dset, have, 8);
    int ok = r == rank;
    for (int i = 0; ok && i < rank; i++) ok = have[i] == dims[i];
    if (!ok) {
        char a[128], b[128];
        shape_str(a, sizeof a, r, have);
        shape_str(b, sizeof b, rank, dims);
        ep_die("'%s': dataset %s has shape %s, expected %s", lbl, dset, a, b);
    }
}

static void read_any(hid_t f, const char *lbl, const char *dset, hid_t mtype, void *out, int rank, const hsize_t *dims) {
    expect_shape(f, lbl, dset, rank, dims);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        ep_die("'%s': cannot read dataset %s (wrong type or corrupt data)", lbl, dset);
    H5Dclose(d);
}

void h5_read_f32(hid_t f, const char *l, const char *d, float *o, int r, const hsize_t *dims) { read_any(f, l, d, H5T_NATIVE_FLOAT, o, r, dims); }
void h5_read_i32(hid_t f, const char *l, const char *d, int32_t *o, int r, const hsize_t *dims) { read_any(f, l, d, H5T_NATIVE_INT32, o, r, dims); }
void h5_read_u8(hid_t f, const char *l, const char *d, uint8_t *o, int r, const hsize_t *dims) { read_any(f, l, d, H5T_NATIVE_UINT8, o, r, dims); }
void h5_read_f64(hid_t f, const char *l, const char *d, double *o, int r, const hsize_t *dims) { read_any(f, l, d, H5T_NATIVE_DOUBLE, o, r, dims); }

double h5_read_f64_scalar(hid_t f, const char *lbl, const char *dset) {
    hsize_t dims[8];
    int r = h5_dims(f, lbl, dset, dims, 8);
    hsize_t n = 1;
    for (int i = 0; i < r; i++) n *= dims[i];
    if (n != 1) ep_die("'%s': dataset %s should hold one value", lbl, dset);
    double v;
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0) ep_die("'%s': cannot read %s", lbl, dset);
    H5Dclose(d);
    return v;
}

static void make_parents(hid_t f, const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (H5Lexists(f, buf, H5P_DEFAULT) <= 0) {
            char why[768];
            errno = 0;
            hid_t g = H5Gcreate2(f, buf, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0) ep_die("cannot create group %s in %s", buf, WHY(f));
            H5Gclose(g);
        }
        *p = '/';
    }
}

/* Our rank in the communicator the file was opened on (0 when not MPI-IO),
 * so `writer` means a rank of that communicator, not of MPI_COMM_WORLD. */
static int file_rank(hid_t f, int *mpio) {
    hid_t fapl = H5Fget_access_plist(f);
    int me = 0;
    *mpio = H5Pget_driver(fapl) == H5FD_MPIO;
    if (*mpio) {
        MPI_Comm comm = MPI_COMM_NULL;
        MPI_Info info = MPI_INFO_NULL;
        H5Pget_fapl_mpio(fapl, &comm, &info); /* returns duplicates: free them */
        MPI_Comm_rank(comm, &me);
        MPI_Comm_free(&comm);
        if (info != MPI_INFO_NULL) MPI_Info_free(&info);
    }
    H5Pclose(fapl);
    return me;
}

static void write_any(hid_t f, const char *dset, hid_t ftype, hid_t mtype, const void *data, int rank, const hsize_t *dims, int writer) {
    make_parents(f, dset);
    hsize_t scalar = 1;
    hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    (void)scalar;
    char why[768];
    errno = 0;
    hid_t d = H5Dcreate2(f, dset, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) ep_die("cannot create dataset %s in %s", dset, WHY(f));
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    int mpio, me = file_rank(f, &mpio);
    if (mpio) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    hid_t fsel = H5Scopy(space), msel = H5Scopy(space);
    if (me != writer) { H5Sselect_none(fsel); H5Sselect_none(msel); }
    errno = 0;
    if (H5Dwrite(d, mtype, msel, fsel, dxpl, data) < 0) ep_die("cannot write dataset %s to %s", dset, WHY(f));
    H5Sclose(fsel);
    H5Sclose(msel);
    H5Pclose(dxpl);
    H5Dclose(d);
    H5Sclose(space);
}

void h5_write_f32(hid_t f, const char *d, const float *x, int r, const hsize_t *dims, int w) { write_any(f, d, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x, r, dims, w); }
void h5_write_i32(hid_t f, const char *d, const int32_t *x, int r, const hsize_t *dims, int w) { write_any(f, d, H5T_STD_I32LE, H5T_NATIVE_INT32, x, r, dims, w); }
void h5_write_u8(hid_t f, const char *d, const uint8_t *x, int r, const hsize_t *dims, int w) { write_any(f, d, H5T_STD_U8LE, H5T_NATIVE_UINT8, x, r, dims, w); }
void h5_write_f64(hid_t f, const char *d, const double *x, int r, const hsize_t *dims, int w) { write_any(f, d, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x, r, dims, w); }

/* Selects flat elements [a, b) of the sub-array at level lvl (indices before lvl fixed in pos). */
static void select_flat(hid_t sp, int rank, const hsize_t *dims, int lvl, hsize_t *pos, hsize_t a, hsize_t b,
                        int *first) {
    if (a >= b) return;
    hsize_t inner = 1;
    for (int i = lvl + 1; i < rank; i++) inner *= dims[i];
    hsize_t off[8], cnt[8];
    if (lvl == rank - 1 || (a % inner == 0 && b % inner == 0)) { /* whole rows at this level */
        for (int i = 0; i < rank; i++) {
            off[i] = i < lvl ? pos[i] : 0;
            cnt[i] = i < lvl ? 1 : dims[i];
        }
        off[lvl] = a / inner;
        cnt[lvl] = (b - a) / inner;
        H5Sselect_hyperslab(sp, *first ? H5S_SELECT_SET : H5S_SELECT_OR, off, NULL, cnt, NULL);
        *first = 0;
        return;
    }
    hsize_t ra = a / inner, rb = b / inner;
    if (ra == rb) {
        pos[lvl] = ra;
        select_flat(sp, rank, dims, lvl + 1, pos, a - ra * inner, b - ra * inner, first);
        return;
    }
    hsize_t mid = ra;
    if (a % inner) { /* the partial first row */
        pos[lvl] = ra;
        select_flat(sp, rank, dims, lvl + 1, pos, a % inner, inner, first);
        mid = ra + 1;
    }
    if (rb > mid) select_flat(sp, rank, dims, lvl, pos, mid * inner, rb * inner, first);
    if (b % inner) { /* the partial last row */
        pos[lvl] = rb;
        select_flat(sp, rank, dims, lvl + 1, pos, 0, b % inner, first);
    }
}

static hid_t flat_selection(hid_t d, hsize_t a, hsize_t b) {
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8], pos[8] = {0};
    int rank = H5Sget_simple_extent_ndims(sp), first = 1;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (a >= b) H5Sselect_none(sp);
    else if (rank == 0) H5Sselect_all(sp);
    else select_flat(sp, rank, dims, 0, pos, a, b, &first);
    return sp;
}

void h5_create_f32(hid_t f, const char *dset, int rank, const hsize_t *dims) {
    make_parents(f, dset);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    char why[768];
    errno = 0;
    hid_t d = H5Dcreate2(f, dset, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) ep_die("cannot create dataset %s in %s", dset, WHY(f));
    H5Dclose(d);
    H5Sclose(space);
}

void h5_write_f32_range(hid_t f, const char *dset, const float *data, hsize_t a, hsize_t b) {
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t fsel = flat_selection(d, a, b);
    hsize_t n = b > a ? b - a : 1;
    hid_t msel = H5Screate_simple(1, &n, NULL);
    if (b <= a) H5Sselect_none(msel);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    int mpio;
    file_rank(f, &mpio);
    if (mpio) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    char why[768];
    errno = 0;
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, msel, fsel, dxpl, data) < 0) ep_die("cannot write dataset %s to %s", dset, WHY(f));
    H5Pclose(dxpl);
    H5Sclose(msel);
    H5Sclose(fsel);
    H5Dclose(d);
}

void h5_read_f32_range(hid_t f, const char *lbl, const char *dset, float *out, int rank, const hsize_t *dims,
                       hsize_t a, hsize_t b) {
    expect_shape(f, lbl, dset, rank, dims);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t fsel = flat_selection(d, a, b);
    hsize_t n = b > a ? b - a : 1;
    hid_t msel = H5Screate_simple(1, &n, NULL);
    if (b <= a) H5Sselect_none(msel);
    if (H5Dread(d, H5T_NATIVE_FLOAT, msel, fsel, H5P_DEFAULT, out) < 0)
        ep_die("'%s': cannot read dataset %s (wrong type or corrupt data)", lbl, dset);
    H5Sclose(msel);
    H5Sclose(fsel);
    H5Dclose(d);
}

static hid_t open_obj(hid_t f, const char *obj) {
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    if (o < 0) ep_die("cannot open object %s", obj);
    return o;
}

static void put_attr(hid_t f, const char *obj, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n) {
    hid_t o = open_obj(f, obj);
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    char why[768];
    errno = 0;
    hid_t a = H5Acreate2(o, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, v) < 0) ep_die("cannot write attribute %s on %s of %s", name, obj, WHY(f));
    H5Aclose(a);
    H5Sclose(sp);
    H5Oclose(o);
}

void h5_attr_int(hid_t f, const char *obj, const char *name, long long v) { put_attr(f, obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v, 0); }
void h5_attr_double(hid_t f, const char *obj, const char *name, double v) { put_attr(f, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0); }
void h5_attr_u64_array(hid_t f, const char *obj, const char *name, const uint64_t *v, int n) { put_attr(f, obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, v, (hsize_t)n); }

void h5_attr_str(hid_t f, const char *obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    put_attr(f, obj, name, t, t, v, 0);
    H5Tclose(t);
}

int h5_has_attr(hid_t f, const char *obj, const char *name) {
    if (strcmp(obj, "/") != 0 && !h5_exists(f, obj)) return 0;
    hid_t o = open_obj(f, obj);
    int e = H5Aexists(o, name) > 0;
    H5Oclose(o);
    return e;
}

static hid_t get_attr(hid_t f, const char *lbl, const char *obj, const char *name, hid_t *o) {
    if (!h5_has_attr(f, obj, name)) ep_die("'%s' lacks attribute '%s' on %s", lbl, name, obj);
    *o = open_obj(f, obj);
    return H5Aopen(*o, name, H5P_DEFAULT);
}

long long h5_get_attr_int(hid_t f, const char *lbl, const char *obj, const char *name) {
    hid_t o, a = get_attr(f, lbl, obj, name, &o);
    long long v = 0;
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) ep_die("'%s': attribute '%s' is not an integer", lbl, name);
    H5Aclose(a);
    H5Oclose(o);
    return v;
}

double h5_get_attr_double(hid_t f, const char *lbl, const char *obj, const char *name) {
    hid_t o, a = get_attr(f, lbl, obj, name, &o);
    double v = 0;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) ep_die("'%s': attribute '%s' is not a number", lbl, name);
    H5Aclose(a);
    H5Oclose(o);
    return v;
}

void h5_get_attr_u64_array(hid_t f, const char *lbl, const char *obj, const char *name, uint64_t *v, int n) {
    hid_t o, a = get_attr(f, lbl, obj, name, &o);
    hid_t sp = H5Aget_space(a);
    if (H5Sget_simple_extent_npoints(sp) != n) ep_die("'%s': attribute '%s' should hold %d values", lbl, name, n);
    if (H5Aread(a, H5T_NATIVE_UINT64, v) < 0) ep_die("'%s': cannot read attribute '%s'", lbl, name);
    H5Sclose(sp);
    H5Aclose(a);
    H5Oclose(o);
}

char *h5_get_attr_str(hid_t f, const char *lbl, const char *obj, const char *name) {
    hid_t o, a = get_attr(f, lbl, obj, name, &o);
    hid_t t = H5Aget_type(a);
    if (H5Tget_class(t) != H5T_STRING) ep_die("'%s': attribute '%s' is not a string", lbl, name);
    char *s;
    H5T_cset_t cset = H5Tget_cset(t); /* h5py writes UTF-8; HDF5 won't convert it to ASCII */
    if (H5Tis_variable_str(t) > 0) {
        char *vs = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, cset);
        if (H5Aread(a, mt, &vs) < 0) ep_die("'%s': cannot read attribute '%s'", lbl, name);
        s = strdup(vs ? vs : "");
        H5free_memory(vs);
        H5Tclose(mt);
    } else {
        size_t n = H5Tget_size(t);
        s = ep_calloc(n + 1, 1, "attribute");
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);
        H5Tset_cset(mt, cset);
        if (H5Aread(a, mt, s) < 0) ep_die("'%s': cannot read attribute '%s'", lbl, name);
        H5Tclose(mt);
    }
    H5Tclose(t);
    H5Aclose(a);
    H5Oclose(o);
    return s;
}

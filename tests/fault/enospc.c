/* A full disk on demand, for tests (LD_PRELOAD=libfault_enospc.so): writes
 * to files whose path contains $FAULT_PATH fail with ENOSPC once
 * $FAULT_BYTES bytes have been written to such files (0: at once). It
 * interposes the write calls that HDF5 and MPI-IO make through libc (write,
 * pwrite, pwritev and their 64-bit names); stdio's own writes stay inside
 * libc and are not reached. A test thus fails a checkpoint, a dataset or a
 * samples file at a chosen byte, on any machine, without mounting anything. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long written;

/* Is fd a file under the chosen path? */
static int targeted(int fd) {
    const char *want = getenv("FAULT_PATH");
    if (!want || !*want) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, want) != NULL;
}

/* 1: this write of n bytes must fail. */
static int full(int fd, size_t n) {
    if (!targeted(fd)) return 0;
    const char *b = getenv("FAULT_BYTES");
    long long limit = b ? atoll(b) : 0;
    if (written + (long long)n > limit) {
        errno = ENOSPC;
        return 1;
    }
    written += (long long)n;
    return 0;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
#define REAL(name, type) static type real_##name; if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write, write_fn);
    return full(fd, n) ? -1 : real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite, pwrite_fn);
    return full(fd, n) ? -1 : real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64, pwrite_fn);
    return full(fd, n) ? -1 : real_pwrite64(fd, buf, n, off);
}

static size_t iov_bytes(const struct iovec *iov, int cnt) {
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    return n;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev, writev_fn);
    return full(fd, iov_bytes(iov, cnt)) ? -1 : real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(pwritev, pwritev_fn);
    return full(fd, iov_bytes(iov, cnt)) ? -1 : real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(pwritev64, pwritev_fn);
    return full(fd, iov_bytes(iov, cnt)) ? -1 : real_pwritev64(fd, iov, cnt, off);
}

#include "core/progress.h"
#include "core/clock.h"
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>

static int is_root(void) {
    int up = 0, rank = 0;
    MPI_Initialized(&up);
    if (up) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank == 0;
}

static void fmt_time(char *buf, size_t n, double s) {
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%dh%02dm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
}

void progress_start(Progress *p, const char *what, long long total) {
    p->what = what;
    p->total = total;
    p->t0 = clock_s();
}

void progress_line(Progress *p, long long done, const char *fmt, ...) {
    if (!is_root()) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    double el = clock_s() - p->t0;
    char e[32], r[32];
    fmt_time(e, sizeof e, el);
    if (done > 0 && p->total > 0) {
        fmt_time(r, sizeof r, el / done * (p->total - done));
        printf(" | %s %lld/%lld, elapsed %s, ETA %s\n", p->what, done, p->total, e, r);
    } else {
        printf(" | elapsed %s\n", e);
    }
    fflush(stdout);
}

void progress_done(Progress *p) {
    if (!is_root()) return;
    char e[32];
    fmt_time(e, sizeof e, clock_s() - p->t0);
    printf("%s done in %s\n", p->what, e);
    fflush(stdout);
}

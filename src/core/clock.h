/* The one clock for wall-time measurements: seconds on the monotonic clock
 * (never steps back when the system time is set). */
#pragma once
#include <time.h>

static inline double clock_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Progress of a long command: each reported line carries done/total and an
 * ETA; plain lines, so a terminal and a log file read the same. */
#pragma once

typedef struct {
    const char *what;
    long long total;
    double t0;
} Progress;

void progress_start(Progress *p, const char *what, long long total);
/* done: units finished since start; fmt: the caller's message. */
void progress_line(Progress *p, long long done, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void progress_done(Progress *p);

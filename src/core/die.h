/* Fatal errors: one clear line naming the problem, then a non-zero exit.
 * Under MPI every rank is taken down so a job never hangs on a dead peer. */
#pragma once
#include <stdio.h>

void ep_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void ep_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *ep_malloc(size_t bytes, const char *what);
void *ep_calloc(size_t n, size_t size, const char *what);

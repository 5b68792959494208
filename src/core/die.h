/* Fatal errors: one clear line naming the problem, then a non-zero exit.
 * Under MPI every rank is taken down so a job never hangs on a dead peer.
 * Files being written are registered while they are incomplete, so that a
 * death on the way (a full disk, a bad value) removes them: nothing
 * half-written stays behind, and nothing already written is touched. */
#pragma once
#include <setjmp.h>
#include <stdio.h>

void ep_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void ep_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *ep_malloc(size_t bytes, const char *what);
void *ep_calloc(size_t n, size_t size, const char *what);

/* path is being written and incomplete: ep_die removes it. Returns a handle for ep_partial_done. */
int ep_partial_begin(const char *path);
/* path is complete (or removed by the caller): ep_die leaves it. */
void ep_partial_done(int handle);

/* Fuzzing and tests: while jump is set, ep_die prints its line and
 * longjmps there (value 1) instead of exiting. NULL: exit again. */
void ep_die_jump(jmp_buf *jump);

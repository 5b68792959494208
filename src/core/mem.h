/* A counting allocator for the big buffers (parameters, gradients, optimizer
 * moments, activations, scratch): it knows the bytes in use and their peak,
 * so a run can report what each Ent-Prog stage really holds. */
#pragma once
#include <stddef.h>

void *mem_alloc(size_t bytes, const char *what);   /* zeroed; dies on failure naming `what` */
void mem_free(void *p);                            /* NULL is fine */
size_t mem_in_use(void);
size_t mem_peak(void);
void mem_reset_peak(void);                         /* peak := in use, e.g. at a stage start */

/* Small path helpers shared by the commands that write folders of output. */
#pragma once
#include <stddef.h>

/* mkdir -p: creates dir and its parents; dies naming the folder and `what`
 * (the deck key or option that gave it, e.g. "train.out_dir"). */
void path_mkdirs(const char *dir, const char *what);
/* dir/name into buf; dies when it does not fit. */
void path_join(char *buf, size_t n, const char *dir, const char *name);

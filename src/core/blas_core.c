#include "core/blas_core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

/* The cores OpenBLAS falls back to, all without AVX2. */
static int is_old_core(const char *name) {
    static const char *old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                                "Coppermine", "Northwood", "Banias", "Sandybridge"};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++)
        if (!strcasecmp(name, old[i])) return 1;
    return 0;
}

/* The best OpenBLAS core this CPU's instructions allow, or NULL. */
static const char *wanted_core(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

void blas_core_fix(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return; /* the user's choice, or set by our re-exec */
    const char *want = wanted_core();
    if (!want || !is_old_core(openblas_get_corename())) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): go on with the slower kernels, results are still right */
    fprintf(stderr, "entprog: warning: OpenBLAS chose its %s kernels on a CPU with %s instructions and the program "
                    "could not restart itself with OPENBLAS_CORETYPE=%s; set it by hand for ~3x faster CPU steps\n",
            openblas_get_corename(), want, want);
    unsetenv("OPENBLAS_CORETYPE");
}

const char *blas_core_name(void) { return openblas_get_corename(); }

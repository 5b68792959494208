/* OpenBLAS core choice. OpenBLAS picks its kernels by the CPU model number at
 * load time; on CPUs it does not know (some VMs report a generic "Intel Xeon
 * Processor") it falls back to its SSE3 "Prescott" kernels, about 3x slower
 * than the AVX-512 ones the CPU has (docs/results.md). */
#pragma once

/* Called first thing in main(), before anything runs a BLAS call. When
 * OPENBLAS_CORETYPE is unset and OpenBLAS chose an older core than the CPU's
 * instructions allow, sets OPENBLAS_CORETYPE (SkylakeX for AVX-512, Haswell
 * for AVX2+FMA) and re-executes the program, since OpenBLAS reads it only when
 * it loads. A user's OPENBLAS_CORETYPE is always kept. Records which core was
 * used in blas_core_name(). */
void blas_core_fix(char **argv);

/* The OpenBLAS core in use ("SkylakeX", "Haswell", ...). */
const char *blas_core_name(void);

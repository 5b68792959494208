/* Backend choice and dispatch: op_<name> calls cpu_<name> or cuda_<name>. */
#include "ops/ops.h"
#include "core/blas_core.h"
#include "core/clock.h"
#include "core/die.h"
#include "core/mem.h"
#include "ops/ops_cpu.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef ENTPROG_CUDA
#include "cuda/ops_cuda.h"
#endif

static Backend backend = BACKEND_CPU;
static char desc[256];
static int sim_device = -1;

int ops_host_memory(void) {
    if (backend == BACKEND_CUDA) return 0;
    if (sim_device < 0) {
        const char *e = getenv("ENTPROG_SIM_DEVICE");
        sim_device = e && *e && strcmp(e, "0") != 0;
    }
    return !sim_device;
}

int ops_cuda_built(void) {
#ifdef ENTPROG_CUDA
    return 1;
#else
    return 0;
#endif
}

void ops_select(Backend b) {
    if (b == BACKEND_CUDA) {
#ifdef ENTPROG_CUDA
        char why[200];
        if (cuda_init(why, sizeof why) != 0) ep_die("backend cuda: %s", why);
        snprintf(desc, sizeof desc, "%s", why);
#else
        ep_die("backend cuda: this entprog was built without CUDA (nvcc was not found at configure time); "
               "use backend = cpu or rebuild on a machine with the CUDA toolkit");
#endif
    } else {
        snprintf(desc, sizeof desc, "CPU, %d OpenMP threads, OpenBLAS %s, fp32%s", omp_get_max_threads(), blas_core_name(),
                 ops_host_memory() ? "" : " (ENTPROG_SIM_DEVICE: separate backend copies, as on a GPU)");
    }
    backend = b;
}

void ops_assume(Backend b) {
#ifndef ENTPROG_CUDA
    if (b == BACKEND_CUDA) ep_die("backend cuda: this entprog was built without CUDA, so it cannot plan for it");
#endif
    backend = b;
}

void ops_select_named(const char *name) {
    if (!strcmp(name, "cuda")) ops_select(BACKEND_CUDA);
    else if (!strcmp(name, "cpu")) ops_select(BACKEND_CPU);
    else ep_die("unknown backend '%s' (expected cpu or cuda)", name);
}

Backend ops_backend(void) { return backend; }
const char *ops_backend_name(void) { return backend == BACKEND_CUDA ? "cuda" : "cpu"; }
const char *ops_device_desc(void) {
    if (!desc[0]) ops_select(backend);
    return desc;
}

#ifdef ENTPROG_CUDA
#define ON_GPU (backend == BACKEND_CUDA)
#define PICK(name, args) (ON_GPU ? cuda_##name args : cpu_##name args)
#else
#define PICK(name, args) cpu_##name args
#endif

size_t ops_device_free(void) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) return cuda_mem_free();
#endif
    return 0;
}

/* Backend memory: the counting allocator on the CPU, device memory on CUDA. */
void *ops_alloc(size_t bytes, const char *what) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) return cuda_alloc(bytes, what);
#endif
    return mem_alloc(bytes, what);
}

void ops_free(void *p) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) { cuda_free(p); return; }
#endif
    mem_free(p);
}

void ops_upload(void *dst, const void *src, size_t bytes) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) { cuda_upload(dst, src, bytes); return; }
#endif
    if (bytes && dst != src) memcpy(dst, src, bytes);
}

void ops_download(void *dst, const void *src, size_t bytes) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) { cuda_download(dst, src, bytes); return; }
#endif
    if (bytes && dst != src) memcpy(dst, src, bytes);
}

void ops_copy(void *dst, const void *src, size_t bytes) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) { cuda_copy(dst, src, bytes); return; }
#endif
    if (bytes && dst != src) memmove(dst, src, bytes);
}

static size_t cpu_mem_in_use(void) { return mem_in_use(); }
static size_t cpu_mem_peak(void) { return mem_peak(); }
static void cpu_mem_reset_peak(void) { mem_reset_peak(); }
void ops_pin(void *host, size_t bytes) {
#ifdef ENTPROG_CUDA
    if (ON_GPU && host && bytes) cuda_pin(host, bytes);
#endif
    (void)host, (void)bytes;
}

void ops_unpin(void *host) {
#ifdef ENTPROG_CUDA
    if (ON_GPU && host) cuda_unpin(host);
#endif
    (void)host;
}

size_t ops_mem_in_use(void) { return PICK(mem_in_use, ()); }
size_t ops_mem_peak(void) { return PICK(mem_peak, ()); }
void ops_mem_reset_peak(void) { PICK(mem_reset_peak, ()); }
static void cpu_sync(void) {}
void ops_sync(void) { PICK(sync, ()); }

double op_sum_squares(const float *x, size_t n) { return PICK(sum_squares, (x, n)); }
size_t op_attention_state_floats(const AttnShape *a) { return PICK(attention_state_floats, (a)); }
size_t op_attention_scratch_floats(const AttnShape *a) { return PICK(attention_scratch_floats, (a)); }

/* im2col scratch: one image's worth per CPU thread; none on the GPU, where
 * cuDNN works from the backend's own workspace (cuda/conv.cu). */
size_t op_conv2d_scratch_floats(int Cin, int Ho, int Wo, int k) {
#ifdef ENTPROG_CUDA
    if (ON_GPU) return 0;
#endif
    return cpu_conv2d_col_floats(Cin, Ho, Wo, k) * (size_t)omp_get_max_threads();
}

/* Model FLOPs of the products (the usual MFU convention: 2 per multiply-add,
 * backward twice forward, attention's recomputation not counted). */
static double flops;
static int uncounted; /* > 0: recomputation, which MFU does not count either */
double ops_flops(void) { return flops; }
void ops_count_flops(int on) { uncounted += on ? -1 : 1; }
static double attn_flops(const AttnShape *a) {
    return 4.0 * a->Z1 * a->Z2 * a->NH * a->dh * (double)a->nq * (a->nq + a->nb);
}
static double conv_flops(int N, int Cin, int H, int Wd, int Cout, int k, int stride, int pad) {
    return 2.0 * N * Cout * Cin * k * k * (double)conv_out_size(H, k, stride, pad) * conv_out_size(Wd, k, stride, pad);
}

/* ENTPROG_PROFILE=1: every op waits for the device before and after, and
 * its time, calls and FLOPs are summed per op (ops_profile_report). */
enum {
#define OP(name, params, args, fl) PROF_##name,
#include "ops/ops_list.h"
#undef OP
    PROF_N
};
static const char *prof_name[PROF_N] = {
#define OP(name, params, args, fl) #name,
#include "ops/ops_list.h"
#undef OP
};
static struct { double s, flops; long calls; } prof[PROF_N];
static int profiling = -1;

int ops_profiling(void) {
    if (profiling < 0) {
        const char *e = getenv("ENTPROG_PROFILE");
        profiling = e && *e && strcmp(e, "0") != 0;
    }
    return profiling;
}

void ops_profile_report(FILE *out) {
    if (!ops_profiling()) return;
    double total = 0;
    int order[PROF_N];
    for (int i = 0; i < PROF_N; i++) total += prof[i].s, order[i] = i;
    for (int i = 1; i < PROF_N; i++) /* by time, largest first */
        for (int j = i; j > 0 && prof[order[j]].s > prof[order[j - 1]].s; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    fprintf(out, "| op (%s) | calls | ms | share | TFLOP/s |\n|---|---|---|---|---|\n", ops_backend_name());
    for (int k = 0; k < PROF_N; k++) {
        int i = order[k];
        if (!prof[i].calls) continue;
        char rate[32] = "-";
        if (prof[i].flops > 0 && prof[i].s > 0) snprintf(rate, sizeof rate, "%.1f", prof[i].flops / prof[i].s / 1e12);
        fprintf(out, "| %s | %ld | %.1f | %.1f%% | %s |\n", prof_name[i], prof[i].calls, 1e3 * prof[i].s,
                100 * prof[i].s / (total > 0 ? total : 1), rate);
    }
    fprintf(out, "| all ops | | %.1f | | |\n", 1e3 * total);
}

#define OP(name, params, args, fl)                      \
    void op_##name params {                             \
        double f_ = uncounted ? 0.0 : (fl);             \
        flops += f_;                                    \
        if (!ops_profiling()) {                         \
            PICK(name, args);                           \
            return;                                     \
        }                                               \
        ops_sync();                                     \
        double t0_ = clock_s();                            \
        PICK(name, args);                               \
        ops_sync();                                     \
        prof[PROF_##name].s += clock_s() - t0_;            \
        prof[PROF_##name].flops += f_;                  \
        prof[PROF_##name].calls++;                      \
    }
#include "ops/ops_list.h"
#undef OP

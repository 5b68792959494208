/* cuDNN's fused flash attention (scaled dot-product attention, SDPA) as
 * graphs of cuDNN's C++ frontend (header-only, fetched by
 * scripts/install-deps.sh): forward with the softmax statistics kept for
 * backward, and a deterministic backward. One graph per shape, built on its
 * first use (heuristics, and for some engines a run-time compilation:
 * slow, hence the cache) and reused. A graph cuDNN refuses is remembered
 * and reported once; the caller then runs its own kernels.
 *
 * Determinism: `set_deterministic_algorithm(true)`. On Hopper the frontend
 * then builds the backward with a dP workspace (b * h * sq * skv bf16 values,
 * 1 GiB at the `paper` spatial shape) instead of accumulating dQ with
 * atomics; cuDNN >= 9.25 has an alternative ordered-dQ engine, which the
 * frontend takes only when CUDNN_FRONTEND_ATTN_DP_WORKSPACE_LIMIT is set below
 * that size. Both are bitwise reproducible (docs/gpu.md). */
#include "attention_sdpa.cuh"
#include "common.cuh"
#include "cuda/ops_cuda.h"
#include <stdio.h>

static int refused; /* graphs refused so far (test_gpu attn wants none) */
extern "C" int cuda_attention_cudnn_refused(void) { return refused; }

#ifndef ENTPROG_CUDNN_FE

/* Built without the frontend's headers: every graph is refused (said once). */
static int refuse(void) {
    static int said;
    refused += !said;
    if (!said)
        fprintf(stderr, "attention: this build has no cuDNN frontend (CMake did not find cudnn_frontend.h; "
                        "scripts/install-deps.sh installs it): spatial and reference attention run on the "
                        "tensor-core kernels\n");
    said = 1;
    return -1;
}
int cudnn_sdpa_ready(int, const SdpaDims *) { return refuse(); }
void cudnn_sdpa_fwd(const SdpaDims *, __nv_bfloat16 *, float *, const __nv_bfloat16 *, const __nv_bfloat16 *,
                    const __nv_bfloat16 *, const int32_t *, const int32_t *) {
    ep_die("cuDNN attention: not built");
}
void cudnn_sdpa_bwd(const SdpaDims *, __nv_bfloat16 *, __nv_bfloat16 *, __nv_bfloat16 *, const __nv_bfloat16 *,
                    const __nv_bfloat16 *, const __nv_bfloat16 *, const __nv_bfloat16 *, const __nv_bfloat16 *,
                    const float *, const int32_t *, const int32_t *) {
    ep_die("cuDNN attention: not built");
}

#else

#include <chrono>
#include <cudnn_frontend.h>
#include <map>
#include <memory>
#include <string>
#include <tuple>

/* The frontend's experimental run-time compiled engines (Blackwell RMSNorm)
 * call NVRTC; this file never builds them. Weak stand-ins satisfy the linker
 * without making libnvrtc a load-time dependency of every program (a real
 * libnvrtc linked in would take precedence). cuDNN's own run-time compiled
 * engines load NVRTC themselves. */
#include <nvrtc.h>
extern "C" {
#define NO_NVRTC { return NVRTC_ERROR_INTERNAL_ERROR; }
__attribute__((weak)) nvrtcResult nvrtcCreateProgram(nvrtcProgram *, const char *, const char *, int,
                                                     const char *const *, const char *const *) NO_NVRTC
__attribute__((weak)) nvrtcResult nvrtcCompileProgram(nvrtcProgram, int, const char *const *) NO_NVRTC
__attribute__((weak)) nvrtcResult nvrtcDestroyProgram(nvrtcProgram *) NO_NVRTC
__attribute__((weak)) nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram, size_t *) NO_NVRTC
__attribute__((weak)) nvrtcResult nvrtcGetProgramLog(nvrtcProgram, char *) NO_NVRTC
__attribute__((weak)) nvrtcResult nvrtcGetCUBINSize(nvrtcProgram, size_t *) NO_NVRTC
__attribute__((weak)) nvrtcResult nvrtcGetCUBIN(nvrtcProgram, char *) NO_NVRTC
#undef NO_NVRTC
}

namespace fe = cudnn_frontend;
typedef std::shared_ptr<fe::graph::Tensor_attributes> TensorP;

enum { Q_UID = 1, K_UID, V_UID, O_UID, STATS_UID, SEQ_Q_UID, SEQ_KV_UID, DO_UID, DQ_UID, DK_UID, DV_UID };

static cudnnHandle_t handle;
static void *ws;     /* the graphs' workspace: one, as large as the largest needs */
static size_t ws_bytes;

struct Built {
    std::shared_ptr<fe::graph::Graph> g; /* NULL: refused */
};
/* backward?, b, h, sq, skv, d, padded (the scale follows from d) */
typedef std::tuple<int, int, int, int, int, int, int> Key;
static std::map<Key, Built> graphs;

/* Once per process: which cuDNN runs (the device's, maybe not the headers'). */
static int start(void) {
    static int state; /* 0 not yet, 1 ready, -1 unusable */
    if (state) return state;
    size_t v = cudnnGetVersion();
    fprintf(stderr,
            "attention: cuDNN %zu.%zu.%zu at run time (headers %d.%d.%d), cudnn-frontend %d.%d.%d: fused flash "
            "attention (SDPA) for the spatial+bank and reference attention, bf16, deterministic backward\n",
            v / 10000, v / 100 % 100, v % 100, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL,
            CUDNN_FRONTEND_MAJOR_VERSION, CUDNN_FRONTEND_MINOR_VERSION, CUDNN_FRONTEND_PATCH_VERSION);
    cudnnStatus_t st = cudnnCreate(&handle);
    if (st != CUDNN_STATUS_SUCCESS) {
        fprintf(stderr, "attention: cudnnCreate failed (%s): every attention runs on the tensor-core kernels\n",
                cudnnGetErrorString(st));
        return state = -1;
    }
    return state = 1; /* the handle's stream stays the legacy default one, as every op's */
}

/* A [b, h, n, d] tensor stored as [b][n][h*d] rows. */
static void rows_layout(fe::graph::Tensor_attributes &t, const SdpaDims &s, int n) {
    int64_t D = (int64_t)s.h * s.d;
    t.set_dim({s.b, s.h, n, s.d}).set_stride({(int64_t)n * D, s.d, D, 1});
}
static TensorP rows_in(fe::graph::Graph &g, const char *name, int uid, const SdpaDims &s, int n) {
    fe::graph::Tensor_attributes t;
    t.set_name(name).set_uid(uid);
    rows_layout(t, s, n);
    return g.tensor(t);
}
static void rows_out(const TensorP &t, int uid, const SdpaDims &s, int n) {
    t->set_output(true).set_uid(uid);
    rows_layout(*t, s, n);
}
static TensorP seq_lens(fe::graph::Graph &g, const char *name, int uid, const SdpaDims &s) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim({s.b, 1, 1, 1})
                        .set_stride({1, 1, 1, 1})
                        .set_data_type(fe::DataType_t::INT32));
}
static std::shared_ptr<fe::graph::Graph> new_graph(void) {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    return g;
}

/* The stages of a build, each with its own message when cuDNN says no. */
#define STAGE(call, what)                                                                              \
    do {                                                                                               \
        fe::error_t e_ = (call);                                                                       \
        if (e_.is_bad()) return std::string(what) + ": " + e_.get_message();                          \
    } while (0)
static std::string build(fe::graph::Graph &g) {
    STAGE(g.validate(), "validate");
    STAGE(g.build_operation_graph(handle), "build_operation_graph");
    STAGE(g.create_execution_plans({fe::HeurMode_t::A}), "create_execution_plans (heuristics)");
    STAGE(g.check_support(handle), "check_support");
    STAGE(g.build_plans(), "build_plans");
    return "";
}

static std::shared_ptr<fe::graph::Graph> make_fwd(const SdpaDims &s) {
    auto g = new_graph();
    TensorP Q = rows_in(*g, "Q", Q_UID, s, s.sq), K = rows_in(*g, "K", K_UID, s, s.skv),
            V = rows_in(*g, "V", V_UID, s, s.skv);
    auto opt = fe::graph::SDPA_attributes().set_name("sdpa").set_generate_stats(true).set_attn_scale(s.scale);
    if (s.padded)
        opt.set_padding_mask(true)
            .set_seq_len_q(seq_lens(*g, "seq_q", SEQ_Q_UID, s))
            .set_seq_len_kv(seq_lens(*g, "seq_kv", SEQ_KV_UID, s));
    auto [O, Stats] = g->sdpa(Q, K, V, opt);
    rows_out(O, O_UID, s, s.sq);
    Stats->set_output(true)
        .set_uid(STATS_UID)
        .set_data_type(fe::DataType_t::FLOAT)
        .set_dim({s.b, s.h, s.sq, 1})
        .set_stride({(int64_t)s.h * s.sq, s.sq, 1, 1});
    return g;
}

static std::shared_ptr<fe::graph::Graph> make_bwd(const SdpaDims &s) {
    auto g = new_graph();
    TensorP Q = rows_in(*g, "Q", Q_UID, s, s.sq), K = rows_in(*g, "K", K_UID, s, s.skv),
            V = rows_in(*g, "V", V_UID, s, s.skv), O = rows_in(*g, "O", O_UID, s, s.sq),
            dO = rows_in(*g, "dO", DO_UID, s, s.sq);
    TensorP Stats = g->tensor(fe::graph::Tensor_attributes()
                                  .set_name("stats")
                                  .set_uid(STATS_UID)
                                  .set_dim({s.b, s.h, s.sq, 1})
                                  .set_stride({(int64_t)s.h * s.sq, s.sq, 1, 1})
                                  .set_data_type(fe::DataType_t::FLOAT));
    auto opt = fe::graph::SDPA_backward_attributes()
                   .set_name("sdpa_backward")
                   .set_attn_scale(s.scale)
                   .set_deterministic_algorithm(true);
    if (s.padded)
        opt.set_padding_mask(true)
            .set_seq_len_q(seq_lens(*g, "seq_q", SEQ_Q_UID, s))
            .set_seq_len_kv(seq_lens(*g, "seq_kv", SEQ_KV_UID, s));
    auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, Stats, opt);
    rows_out(dQ, DQ_UID, s, s.sq);
    rows_out(dK, DK_UID, s, s.skv);
    rows_out(dV, DV_UID, s, s.skv);
    return g;
}

/* The cached graph of this shape, built now if new; NULL when refused. */
static fe::graph::Graph *lookup(int backward, const SdpaDims &s) {
    Key key(backward, s.b, s.h, s.sq, s.skv, s.d, s.padded);
    auto it = graphs.find(key);
    if (it != graphs.end()) return it->second.g.get();
    const char *kind = backward ? "backward" : "forward";
    Built b;
    std::string why;
    auto t0 = std::chrono::steady_clock::now();
    if (start() < 0) why = "no cuDNN handle";
    else try {
            b.g = backward ? make_bwd(s) : make_fwd(s);
            why = build(*b.g);
        } catch (const std::exception &ex) { /* the frontend throws where no implementation fits */
            why = std::string("graph construction: ") + ex.what();
        }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!why.empty()) {
        fprintf(stderr,
                "attention: cuDNN refused the SDPA %s graph (%d problems x %d heads, %d queries, %d keys, head "
                "width %d%s): %s; this shape runs on the tensor-core kernels\n",
                kind, s.b, s.h, s.sq, s.skv, s.d, s.padded ? ", padding mask" : "", why.c_str());
        b.g = NULL;
        refused++;
    } else {
        int64_t need = 0;
        if (b.g->get_workspace_size(need).is_bad()) need = 0;
        if ((size_t)need > ws_bytes) { /* cuda_alloc/free: counted in the device peak */
            cuda_free(ws);
            ws = cuda_alloc((size_t)need, "cuDNN attention workspace");
            ws_bytes = (size_t)need;
        }
        std::string plan;
        if (b.g->get_plan_name(plan).is_bad()) plan = "?";
        fprintf(stderr,
                "attention: cuDNN SDPA %s graph (%d problems x %d heads, %d queries, %d keys, head width %d%s): "
                "engine %s, workspace %.1f MiB, built in %.0f ms\n",
                kind, s.b, s.h, s.sq, s.skv, s.d, s.padded ? ", padding mask" : "", plan.c_str(),
                need / 1048576.0, ms);
    }
    graphs[key] = b;
    return b.g.get();
}

/* An execution failure after a successful build is a fault, not a refusal. */
static void run(fe::graph::Graph *g, std::unordered_map<int64_t, void *> &pack, const char *kind) {
    std::string why;
    try {
        fe::error_t e = g->execute(handle, pack, ws);
        if (e.is_bad()) why = e.get_message();
    } catch (const std::exception &ex) { /* no exception may cross into the C callers */
        why = ex.what();
    }
    if (!why.empty()) ep_die("cuDNN SDPA %s: execute failed: %s", kind, why.c_str());
    KCHECK("cuDNN SDPA");
}

int cudnn_sdpa_ready(int backward, const SdpaDims *s) { return lookup(backward, *s) ? 0 : -1; }

void cudnn_sdpa_fwd(const SdpaDims *s, __nv_bfloat16 *o, float *stats, const __nv_bfloat16 *q, const __nv_bfloat16 *k,
                    const __nv_bfloat16 *v, const int32_t *seq_q, const int32_t *seq_kv) {
    fe::graph::Graph *g = lookup(0, *s);
    if (!g) ep_die("cuDNN SDPA forward: a refused graph was run");
    std::unordered_map<int64_t, void *> pack = {
        {Q_UID, (void *)q}, {K_UID, (void *)k}, {V_UID, (void *)v}, {O_UID, o}, {STATS_UID, stats}};
    if (s->padded) pack[SEQ_Q_UID] = (void *)seq_q, pack[SEQ_KV_UID] = (void *)seq_kv;
    run(g, pack, "forward");
}

void cudnn_sdpa_bwd(const SdpaDims *s, __nv_bfloat16 *dq, __nv_bfloat16 *dk, __nv_bfloat16 *dv, const __nv_bfloat16 *q,
                    const __nv_bfloat16 *k, const __nv_bfloat16 *v, const __nv_bfloat16 *o, const __nv_bfloat16 *dout,
                    const float *stats, const int32_t *seq_q, const int32_t *seq_kv) {
    fe::graph::Graph *g = lookup(1, *s);
    if (!g) ep_die("cuDNN SDPA backward: a refused graph was run");
    std::unordered_map<int64_t, void *> pack = {{Q_UID, (void *)q},     {K_UID, (void *)k},  {V_UID, (void *)v},
                                                {O_UID, (void *)o},     {DO_UID, (void *)dout},
                                                {STATS_UID, (void *)stats}, {DQ_UID, dq},    {DK_UID, dk},
                                                {DV_UID, dv}};
    if (s->padded) pack[SEQ_Q_UID] = (void *)seq_q, pack[SEQ_KV_UID] = (void *)seq_kv;
    run(g, pack, "backward");
}

#endif

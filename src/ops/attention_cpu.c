/* CPU attention: scores and softmax materialised per head (S is at most a few
 * hundred on CPU), all products through sgemm on strided head slices. */
#include "ops/ops_cpu.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>

static int total_keys(const KVSet *kv, int nsets) {
    int nk = 0;
    for (int s = 0; s < nsets; s++)
        if (kv[s].k) nk += kv[s].n;
    return nk;
}

static void softmax_rows(float *P, int rows, int cols) {
    for (int i = 0; i < rows; i++) {
        float *r = P + (size_t)i * cols, mx = r[0], sum = 0;
        for (int j = 1; j < cols; j++) mx = r[j] > mx ? r[j] : mx;
        for (int j = 0; j < cols; j++) { r[j] = expf(r[j] - mx); sum += r[j]; }
        float inv = 1.0f / sum;
        for (int j = 0; j < cols; j++) r[j] *= inv;
    }
}

void cpu_attention_one(float *out, int ldo, float *P, const float *q, int ldq, int nq, const KVSet *kv, int nsets,
                  int NH, int dh) {
    int nk = total_keys(kv, nsets);
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < NH; h++) {
        float *Ph = P + (size_t)h * nq * nk;
        int col = 0;
        for (int s = 0; s < nsets; s++) {
            if (!kv[s].k) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, kv[s].n, dh, scale, q + h * dh, ldq,
                        kv[s].k + h * dh, kv[s].ld, 0.0f, Ph + col, nk);
            col += kv[s].n;
        }
        softmax_rows(Ph, nq, nk);
        col = 0;
        for (int s = 0; s < nsets; s++) {
            if (!kv[s].k) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, kv[s].n, 1.0f, Ph + col, nk,
                        kv[s].v + h * dh, kv[s].ld, col ? 1.0f : 0.0f, out + h * dh, ldo);
            col += kv[s].n;
        }
    }
}

void cpu_attention_backward_one(float *dq, int lddq, KVGrad *dkv, const float *dout, int lddo, const float *P,
                           const float *q, int ldq, int nq, const KVSet *kv, int nsets, int NH, int dh,
                           float *dS) {
    int nk = total_keys(kv, nsets);
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < NH; h++) {
        const float *Ph = P + (size_t)h * nq * nk;
        int col = 0;
        for (int s = 0; s < nsets; s++) {
            if (!kv[s].k) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, kv[s].n, dh, 1.0f, dout + h * dh, lddo,
                        kv[s].v + h * dh, kv[s].ld, 0.0f, dS + col, nk);
            col += kv[s].n;
        }
        /* softmax backward, with the score scale folded in */
        for (int i = 0; i < nq; i++) {
            const float *p = Ph + (size_t)i * nk;
            float *d = dS + (size_t)i * nk, dot = 0;
            for (int j = 0; j < nk; j++) dot += p[j] * d[j];
            for (int j = 0; j < nk; j++) d[j] = p[j] * (d[j] - dot) * scale;
        }
        col = 0;
        for (int s = 0; s < nsets; s++) {
            if (!kv[s].k) continue;
            int n = kv[s].n, ld = kv[s].ld;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, dh, n, 1.0f, dS + col, nk, kv[s].k + h * dh,
                        ld, 1.0f, dq + h * dh, lddq);
            if (dkv[s].dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dh, nq, 1.0f, dS + col, nk, q + h * dh, ldq,
                            1.0f, dkv[s].dk + h * dh, ld);
            if (dkv[s].dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dh, nq, 1.0f, Ph + col, nk, dout + h * dh,
                            lddo, 1.0f, dkv[s].dv + h * dh, ld);
            col += n;
        }
    }
}

/* ---- the batched form of ops.h: one problem per (z1, z2), threads over problems ---- */

static size_t per_problem(const AttnShape *a) { return (size_t)a->NH * a->nq * (a->nq + a->nb); }
static size_t scratch_stride(const AttnShape *a) { return ((size_t)a->nq * (a->nq + a->nb) + 15) & ~(size_t)15; }

size_t cpu_attention_state_floats(const AttnShape *a) { return (size_t)a->Z1 * a->Z2 * per_problem(a); }
size_t cpu_attention_scratch_floats(const AttnShape *a) { return scratch_stride(a) * (size_t)omp_get_max_threads(); }

/* The (up to) two key/value sets of problem (z1, z2). */
static int problem_sets(const AttnShape *a, KVSet *kv, const float *qkv, const float *bank, const uint8_t *drop,
                        int z1, int z2, const float **q) {
    int D = a->NH * a->dh;
    *q = qkv + z1 * a->s1 + z2 * a->s2;
    kv[0] = (KVSet){*q + D, *q + 2 * D, a->ld, a->nq};
    if (a->nb == 0) return 1;
    const float *b = bank + z1 * a->bs1;
    kv[1] = (KVSet){drop && drop[z1] ? NULL : b + D, b + 2 * D, a->bld, a->nb};
    return 2;
}

void cpu_attention(const AttnShape *a, float *out, float *state, const float *qkv, const float *bank,
                   const uint8_t *drop) {
#pragma omp parallel for collapse(2)
    for (int z1 = 0; z1 < a->Z1; z1++)
        for (int z2 = 0; z2 < a->Z2; z2++) {
            KVSet kv[2];
            const float *q;
            int ns = problem_sets(a, kv, qkv, bank, drop, z1, z2, &q);
            cpu_attention_one(out + z1 * a->os1 + z2 * a->os2, a->old,
                              state + ((size_t)z1 * a->Z2 + z2) * per_problem(a), q, a->ld, a->nq, kv, ns, a->NH,
                              a->dh);
        }
}

static void backward_problem(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *state,
                             const float *qkv, const float *bank, const uint8_t *drop, float *dS, int z1, int z2) {
    int D = a->NH * a->dh;
    KVSet kv[2];
    const float *q;
    int ns = problem_sets(a, kv, qkv, bank, drop, z1, z2, &q);
    float *dq = dqkv + z1 * a->s1 + z2 * a->s2;
    KVGrad dkv[2] = {{dq + D, dq + 2 * D}, {NULL, NULL}};
    if (ns == 2 && dbank) dkv[1] = (KVGrad){dbank + z1 * a->bs1 + D, dbank + z1 * a->bs1 + 2 * D};
    cpu_attention_backward_one(dq, a->ld, dkv, dout + z1 * a->os1 + z2 * a->os2, a->old,
                               state + ((size_t)z1 * a->Z2 + z2) * per_problem(a), q, a->ld, a->nq, kv, ns, a->NH,
                               a->dh, dS);
}

/* With a bank, one thread owns a sample: its Z2 problems all add into that sample's bank gradient. */
void cpu_attention_backward(const AttnShape *a, float *dqkv, float *dbank, const float *dout, const float *out,
                            const float *state, const float *qkv, const float *bank, const uint8_t *drop,
                            float *scratch) {
    (void)out;
    size_t st = scratch_stride(a);
    if (a->nb > 0) {
#pragma omp parallel for
        for (int z1 = 0; z1 < a->Z1; z1++)
            for (int z2 = 0; z2 < a->Z2; z2++)
                backward_problem(a, dqkv, dbank, dout, state, qkv, bank, drop,
                                 scratch + (size_t)omp_get_thread_num() * st, z1, z2);
    } else {
#pragma omp parallel for collapse(2)
        for (int z1 = 0; z1 < a->Z1; z1++)
            for (int z2 = 0; z2 < a->Z2; z2++)
                backward_problem(a, dqkv, dbank, dout, state, qkv, bank, drop,
                                 scratch + (size_t)omp_get_thread_num() * st, z1, z2);
    }
}

/* CPU attention: scores and softmax materialised per head (S is at most a few
 * hundred on CPU), all products through sgemm on strided head slices. */
#include "ops.h"
#include <cblas.h>
#include <math.h>

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

void op_attention(float *out, int ldo, float *P, const float *q, int ldq, int nq, const KVSet *kv, int nsets,
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

void op_attention_backward(float *dq, int lddq, KVGrad *dkv, const float *dout, int lddo, const float *P,
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

/* libFuzzer target: the checkpoint and weights loader (src/io/checkpoint.c)
 * as `train --resume` calls it. Each input takes a valid checkpoint of a
 * tiny model (weights, AdamW moments, EMA, state, schedule, config) and
 * mutates its structure: tensors deleted or replaced by others of any
 * rank, shape - huge ones too - or type, non-finite values, shape and state
 * attributes dropped or retyped, the checksum changed. Every input must load
 * or be refused with one clear error. */
#include "core/die.h"
#include "core/rng.h"
#include "fuzz_common.h"
#include "io/checkpoint.h"
#include "model/params.h"
#include <mpi.h>
#include <stdlib.h>

static const ModelShape SHAPE = {.F = 2, .C = 3, .H = 4, .W = 4, .p = 2, .D = 8, .NH = 2, .L = 1, .mlp_ratio = 2,
                                 .Cp = 3, .s = 2, .Cg = 4};
static ParamTable pt;
static float *params, *m, *v, *ema;
static char base[64], path[64];
static const char *dsets[64];
static int n_dsets;
static double stages[2 * 19];

static CkptState state(void) {
    CkptState s = {.pt = &pt, .shape = SHAPE, .params = params, .m = m, .v = v, .ema = ema, .step = 7,
                   .samples_seen = 14, .n_rng = 1, .deck_text = "[model]\nL = 1\n"};
    rng_seed_stream(&s.rng[0], 3, 4);
    s.arrays[s.n_arrays++] = (CkptArray){"stages", stages, 2, 19, 64, 0};
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(base, sizeof base, "/tmp/fuzz_ckpt_base_%d.h5", (int)getpid());
    snprintf(path, sizeof path, "/tmp/fuzz_ckpt_%d.h5", (int)getpid());
    param_table_build(&pt, &SHAPE);
    params = calloc(pt.total, 4), m = calloc(pt.total, 4), v = calloc(pt.total, 4), ema = calloc(pt.total, 4);
    Rng r;
    rng_seed_stream(&r, 1, 1);
    param_init(&pt, &SHAPE, params, &r);
    for (size_t i = 0; i < pt.total; i++) m[i] = 1e-3f * params[i], v[i] = 1e-6f, ema[i] = params[i];
    CkptState s = state();
    ckpt_save(base, &s, MPI_COMM_NULL);
    static char names[64][160];
    for (int i = 0; i < pt.n && n_dsets < 40; i += 1 + pt.n / 30) {
        snprintf(names[n_dsets], sizeof names[0], "/model/%s", pt.info[i].name);
        dsets[n_dsets] = names[n_dsets], n_dsets++;
    }
    const char *more[] = {"/optimizer/m/final.linear.weight", "/optimizer/v/final.linear.bias", "/ema/final.linear.weight",
                          "/optimizer/t", "/schedule/stages", "/config", "/model/extra"};
    for (int i = 0; i < 7; i++) dsets[n_dsets++] = more[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Bytes b = {data, size, 0};
    copy_file(base, path);
    static const char *const attrs[] = {"/@format_version", "/@checksum", "/@D", "/@L", "/@F", "/@NH", "/@p",
                                        "/state@step", "/state@n_rng", "/state@samples_seen", "/@mlp_ratio"};
    mutate_file(path, dsets, n_dsets, attrs, 11, &b);
    jmp_buf jump;
    if (!setjmp(jump)) {
        ep_die_jump(&jump);
        CkptState s = state();
        ModelShape got;
        ckpt_read_shape(path, &got);
        uint8_t mask[4096];
        ckpt_moment_mask(path, &pt, mask);
        ckpt_load(path, &s, MPI_COMM_NULL);
    }
    ep_die_jump(NULL);
    h5_close_all();
    return 0;
}

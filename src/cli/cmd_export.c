/* entprog export --ckpt CKPT --out MODEL.safetensors [--ema] [--dtype fp32|bf16]
 * The weights of a checkpoint (or of a bare weights file) as safetensors with
 * the PyTorch reference's names (docs/weights.md), for the PyTorch ecosystem. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/infer_model.h"
#include "core/die.h"
#include "io/weights.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *dtype = "fp32";
    int ema = 0;
    const ArgOpt opts[] = {
        {"--ckpt", ARG_STR, &ckpt, .required = 1, .what = "checkpoint, bare weights or safetensors file"},
        {"--out", ARG_STR, &out, .required = 1, .what = "safetensors file to write"},
        {"--ema", ARG_FLAG, &ema, .what = "the checkpoint's EMA weights instead of its model weights"},
        {"--dtype", ARG_STR, &dtype, .what = "fp32 (default) or bf16 (rounded to nearest even)"},
    };
    ArgSpec spec = {"export", NULL, opts, sizeof opts / sizeof *opts, NULL};
    if (!args_parse(&spec, argc, argv)) return 0;
    if (strcmp(dtype, "fp32") && strcmp(dtype, "bf16")) ep_die("export: --dtype '%s' is not fp32 or bf16", dtype);
    infer_check_readable("export", "--ckpt", ckpt);

    ModelShape shape;
    weights_read_shape(ckpt, &shape);
    const char *bad = shape_check(&shape, 0);
    if (bad) ep_die("'%s': impossible model shape: %s", ckpt, bad);
    ParamTable pt;
    param_table_build(&pt, &shape);
    float *w = ep_calloc(pt.total, sizeof(float), "weights");
    float *e = ema ? ep_calloc(pt.total, sizeof(float), "EMA weights") : NULL;
    CkptState st = {.pt = &pt, .shape = shape, .params = w, .ema = e};
    int flags = weights_load(ckpt, &st, MPI_COMM_NULL);
    if (ema && !(flags & CKPT_HAS_EMA))
        ep_die("export: --ema: '%s' has no /ema weights (trained with train.ema = 0?)", ckpt);
    weights_save_safetensors(out, &pt, &shape, ema ? e : w, strcmp(dtype, "bf16") ? ST_OUT_F32 : ST_OUT_BF16);
    printf("export: %d tensors, %zu parameters (%s%s) -> %s\n", pt.n, pt.total, dtype, ema ? ", EMA" : "", out);
    free(w), free(e);
    param_table_free(&pt);
    return 0;
}

/* One loader of weights for inference (infer_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli/infer_model.h"
#include "core/die.h"
#include "io/weights.h"
#include "ops/ops.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void infer_check_readable(const char *cmd, const char *opt, const char *path) {
    if (access(path, R_OK) != 0) ep_die("%s: %s '%s': %s", cmd, opt, path, strerror(errno));
}

/* The checkpoint's /ema weights over m->params. */
static void load_ema(Model *m, const ModelShape *shape, const InferSpec *s) {
    float *ema = ep_malloc(m->pt.total * sizeof(float), "EMA weights");
    CkptState st = {.pt = &m->pt, .shape = *shape, .params = m->params, .ema = ema};
    int flags = weights_load(s->path, &st, MPI_COMM_NULL);
    if (!(flags & CKPT_HAS_EMA))
        ep_die("%s: --ema: checkpoint '%s' has no /ema weights (trained with train.ema = 0)", s->cmd, s->path);
    memcpy(m->params, ema, m->pt.total * sizeof(float));
    free(ema);
}

void infer_model_load(Model *m, const ModelShape *shape, const InferSpec *s) {
    ops_select_named(s->backend); /* before the model allocates backend memory */
    infer_check_readable(s->cmd, s->opt, s->path);
    model_create(m, shape);
    if (s->ema) {
        load_ema(m, shape, s);
    } else {
        CkptState st = {.pt = &m->pt, .shape = *shape, .params = m->params};
        weights_load(s->path, &st, MPI_COMM_NULL);
    }
    m->forward_only = !s->with_grad; /* inference keeps no gradients or backward scratch */
    model_set_batch(m, s->B, s->F);
}

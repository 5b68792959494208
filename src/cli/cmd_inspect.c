/* entprog predict / grad --weights W --inputs IN --out OUT [--backend cpu|cuda]:
 * run the model on an inspection file (docs/formats.md) so weights made by
 * another implementation can be checked against this one. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/infer_model.h"
#include "core/die.h"
#include "io/checkpoint.h"
#include "io/h5util.h"
#include "io/weights.h"
#include "model/model.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *weights, *inputs, *out, *backend;
} InspectArgs;

/* 0 when --help was asked for. */
static int parse_args(const char *cmd, int argc, char **argv, InspectArgs *a) {
    *a = (InspectArgs){.backend = "cpu"};
    const ArgOpt opts[] = {
        {"--weights", ARG_STR, &a->weights, .required = 1, .what = "checkpoint or bare weights file"},
        {"--inputs", ARG_STR, &a->inputs, .required = 1, .what = "inspection file: /x, /t, /ref, /pose, ..."},
        {"--out", ARG_STR, &a->out, .required = 1, .what = "file to write"},
        {"--backend", ARG_STR, &a->backend, .what = "cpu (default) or cuda"},
    };
    ArgSpec spec = {cmd, NULL, opts, sizeof opts / sizeof *opts, NULL};
    if (!args_parse(&spec, argc, argv)) return 0;
    if (strcmp(a->backend, "cpu") && strcmp(a->backend, "cuda"))
        ep_die("%s: --backend '%s' is not cpu or cuda", cmd, a->backend);
    return 1;
}

/* Inputs of one inspection file, sized from /x and checked against the model shape. */
typedef struct {
    int B, F;
    float *x, *ref, *pose, *eps;
    int *t;
    uint8_t *drop_ref, *drop_pose;
} InspectInputs;

static void read_inputs(const char *path, ModelShape *shape, int need_eps, InspectInputs *in) {
    hid_t f = h5_open_read(path, MPI_COMM_NULL);
    hsize_t d[8];
    if (h5_dims(f, path, "/x", d, 8) != 5) ep_die("'%s': /x must be [B,F,C,H,W]", path);
    if ((int)d[2] != shape->C || (int)d[3] != shape->H || (int)d[4] != shape->W)
        ep_die("'%s': /x is [%llu,%llu,%llu,%llu,%llu] but the weights need C=%d H=%d W=%d", path,
               (unsigned long long)d[0], (unsigned long long)d[1], (unsigned long long)d[2],
               (unsigned long long)d[3], (unsigned long long)d[4], shape->C, shape->H, shape->W);
    if (d[0] < 1 || d[1] < 1) ep_die("'%s': /x has an empty batch or no frames", path);
    in->B = (int)d[0];
    in->F = shape->F = (int)d[1];
    int B = in->B, F = in->F, sH = shape->s * shape->H, sW = shape->s * shape->W;
    size_t nx = (size_t)B * F * shape->C * shape->H * shape->W;
    in->x = ep_malloc(nx * sizeof(float), "x");
    in->eps = need_eps ? ep_malloc(nx * sizeof(float), "eps") : NULL;
    in->ref = ep_malloc((size_t)B * shape->C * shape->H * shape->W * sizeof(float), "ref");
    in->pose = ep_malloc((size_t)B * F * shape->Cp * sH * sW * sizeof(float), "pose");
    in->t = ep_malloc((size_t)B * sizeof(int), "t");
    in->drop_ref = ep_malloc(B, "drop_ref");
    in->drop_pose = ep_malloc(B, "drop_pose");
    h5_read_f32(f, path, "/x", in->x, 5, d);
    if (need_eps) h5_read_f32(f, path, "/eps", in->eps, 5, d);
    hsize_t dr[4] = {d[0], d[2], d[3], d[4]}, dp[5] = {d[0], d[1], (hsize_t)shape->Cp, (hsize_t)sH, (hsize_t)sW};
    h5_read_f32(f, path, "/ref", in->ref, 4, dr);
    h5_read_f32(f, path, "/pose", in->pose, 5, dp);
    h5_read_i32(f, path, "/t", (int32_t *)in->t, 1, d);
    h5_read_u8(f, path, "/drop_ref", in->drop_ref, 1, d);
    h5_read_u8(f, path, "/drop_pose", in->drop_pose, 1, d);
    h5_close(f);
    for (int i = 0; i < B; i++)
        if (in->t[i] < 0 || in->t[i] >= 1000) ep_die("'%s': /t[%d] = %d is outside [0, 1000)", path, i, in->t[i]);
}

static void free_inputs(InspectInputs *in) {
    free(in->x), free(in->ref), free(in->pose), free(in->eps), free(in->t), free(in->drop_ref), free(in->drop_pose);
}

static int run(const char *cmd, int argc, char **argv, int with_grad) {
    InspectArgs args;
    if (!parse_args(cmd, argc, argv, &args)) return 0;
    ModelShape shape;
    weights_read_shape(args.weights, &shape);
    InspectInputs in;
    read_inputs(args.inputs, &shape, with_grad, &in);
    const char *bad = shape_check(&shape, 1);
    if (bad) ep_die("'%s': impossible model shape: %s", args.weights, bad);

    Model m;
    InferSpec spec = {cmd, "--weights", args.weights, args.backend, .with_grad = with_grad, .B = in.B, .F = in.F};
    infer_model_load(&m, &shape, &spec);

    Batch batch = {in.x, in.t, in.ref, in.pose, in.drop_ref, in.drop_pose};
    size_t n = (size_t)in.B * in.F * shape.C * shape.H * shape.W;
    float *eps_hat = ep_malloc(n * sizeof(float), "eps_hat");
    model_forward(&m, &batch, eps_hat);

    hid_t f = h5_create(args.out, MPI_COMM_NULL);
    h5_attr_int(f, "/", "format_version", CKPT_FORMAT_VERSION);
    hsize_t d[5] = {(hsize_t)in.B, (hsize_t)in.F, (hsize_t)shape.C, (hsize_t)shape.H, (hsize_t)shape.W};
    h5_write_f32(f, "/eps_hat", eps_hat, 5, d, 0);
    if (with_grad) {
        float *deps = ep_malloc(n * sizeof(float), "deps");
        double loss = mse_loss(eps_hat, in.eps, deps, n);
        model_backward(&m, &batch, deps);
        h5_write_f64(f, "/loss", &loss, 0, NULL, 0);
        for (int i = 0; i < m.pt.n; i++) {
            const ParamInfo *p = &m.pt.info[i];
            char name[PARAM_NAME_MAX + 8];
            hsize_t pd[4];
            for (int k = 0; k < p->ndim; k++) pd[k] = (hsize_t)p->shape[k];
            snprintf(name, sizeof name, "/grad/%s", p->name);
            h5_write_f32(f, name, m.grads + p->offset, p->ndim, pd, 0);
        }
        printf("loss %.9g\n", loss);
        free(deps);
    }
    h5_close(f);
    free(eps_hat);
    free_inputs(&in);
    model_destroy(&m);
    return 0;
}

int cmd_predict(int argc, char **argv) { return run("predict", argc, argv, 0); }
int cmd_grad(int argc, char **argv) { return run("grad", argc, argv, 1); }

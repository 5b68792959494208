#include "model/shape.h"
#include "core/die.h"
#include <mpi.h>
#include <stdio.h>
#include <string.h>

const char *const SHAPE_KEY_NAMES[SHAPE_N_KEYS] = {"F", "C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg"};

int *shape_key(ModelShape *m, int i) {
    int *f[SHAPE_N_KEYS] = {&m->F, &m->C, &m->H, &m->W, &m->p, &m->D, &m->NH, &m->L, &m->mlp_ratio, &m->Cp, &m->s, &m->Cg};
    return f[i];
}

int shape_G(const ModelShape *m) {
    int g = 0;
    while ((1 << g) < m->s) g++;
    return g;
}

int shape_frame_embed_temporal(const ModelShape *m) { return !strcmp(m->frame_embed, "temporal"); }

const char *shape_frame_embed_name(const ModelShape *m) { return shape_frame_embed_temporal(m) ? "temporal" : "input"; }

int shape_set_frame_embed(ModelShape *m, const char *v) {
    if (strcmp(v, "input") && strcmp(v, "temporal")) return 0;
    snprintf(m->frame_embed, sizeof m->frame_embed, "%s", v);
    return 1;
}

void shape_warn_frame_embed(const char *path, const ModelShape *have, const ModelShape *want) {
    if (have->F <= 1 || !strcmp(shape_frame_embed_name(have), shape_frame_embed_name(want))) return;
    int rank = 0, up = 0;
    MPI_Initialized(&up);
    if (up) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0)
        ep_warn("'%s' was trained with model.frame_embed = %s; this model adds the frame embedding as '%s' says, "
                "so its video predictions differ from the ones it was trained for", path, shape_frame_embed_name(have),
                shape_frame_embed_name(want));
}

const char *shape_check(const ModelShape *m, int check_F) {
    static char msg[256];
#define NEED(cond, ...) do { if (!(cond)) { snprintf(msg, sizeof msg, __VA_ARGS__); return msg; } } while (0)
    if (check_F) NEED(m->F >= 1, "model.F = %d: frames per clip must be >= 1", m->F);
    NEED(m->C >= 1, "model.C = %d: must be >= 1", m->C);
    NEED(m->p >= 1, "model.p = %d: must be >= 1", m->p);
    NEED(m->H >= 1 && m->H % m->p == 0, "model.H = %d: must be a positive multiple of p = %d", m->H, m->p);
    NEED(m->W >= 1 && m->W % m->p == 0, "model.W = %d: must be a positive multiple of p = %d", m->W, m->p);
    NEED(m->NH >= 1, "model.NH = %d: must be >= 1", m->NH);
    NEED(m->D >= 2 && m->D % m->NH == 0, "model.D = %d: must be divisible by NH = %d", m->D, m->NH);
    NEED(m->D % 4 == 0, "model.D = %d: must be divisible by 4 (2-D sin-cos position embedding)", m->D);
    NEED(m->L >= 1, "model.L = %d: must be >= 1", m->L);
    NEED(m->mlp_ratio >= 1, "model.mlp_ratio = %d: must be >= 1", m->mlp_ratio);
    NEED(m->Cp >= 1, "model.Cp = %d: must be >= 1", m->Cp);
    NEED(m->s >= 1 && (m->s & (m->s - 1)) == 0, "model.s = %d: must be a power of two", m->s);
    NEED(m->Cg >= 1, "model.Cg = %d: must be >= 1", m->Cg);
#undef NEED
    return NULL;
}

void shape_describe(const ModelShape *m, char *buf, int n) {
    snprintf(buf, n, "EP-VDiT D%d L%d NH%d p%d", m->D, m->L, m->NH, m->p);
}

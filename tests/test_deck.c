/* Deck parsing: the shipped decks, defaults, --set overrides, and every kind
 * of bad deck, which must die naming the key (run in a forked child, since
 * ep_die exits). Usage: test_deck <inputs dir> <work dir> */
#include "deck/deck.h"
#include "core/limits.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0;
static const char *workdir;

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); failures++; } } while (0)

#include "expect_death.h"

/* ------------------------------------------------------------------------- */

static void load_file(const void *path) {
    Deck d;
    deck_load(&d, path);
}

/* Writes text to <workdir>/<name>.ini and expects deck_load to die with want. */
static void bad_deck(const char *name, const char *text, const char *want) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.ini", workdir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
    expect_death(name, load_file, path, want);
}

typedef struct { const char *text, *assign; } OverrideCase;

static void override_case(const void *arg) {
    const OverrideCase *c = arg;
    Deck d;
    deck_parse_string(&d, c->text, "override-test");
    deck_override(&d, c->assign);
}

static void bad_override(const char *assign, const char *want) {
    OverrideCase c = {"[train]\nsteps = 5\n", assign};
    expect_death(assign, override_case, &c, want);
}

/* ------------------------------------------------------------------------- */

static void test_defaults(void) {
    Deck d;
    deck_parse_string(&d, "", "empty");
    ModelShape tiny = {.F = 4, .C = 3, .H = 16, .W = 16, .p = 2, .D = 32, .NH = 2, .L = 3,
                       .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 8, .frame_embed = "input"};
    CHECK(memcmp(&d.model, &tiny, sizeof tiny) == 0);
    CHECK(!strcmp(d.data.dir, "data") && d.data.n_train == 16 && d.data.n_val == 4 && d.data.n_test == 4);
    CHECK(d.data.frames == 16 && d.data.frame_stride == 1 && d.data.seed == 1 && d.data.fps == 8);
    TrainConfig *t = &d.train;
    CHECK(!strcmp(t->out_dir, "run") && !strcmp(t->init, "") && t->seed == 1 && t->steps == 100 && t->batch == 2);
    CHECK(!strcmp(t->optimizer, "adamw") && t->lr == 1e-4 && t->beta1 == 0.9 && t->beta2 == 0.999 && t->eps == 1e-8);
    CHECK(t->weight_decay == 0 && t->momentum == 0.9 && t->grad_clip == 1.0 && t->warmup == 0);
    CHECK(!strcmp(t->lr_schedule, "constant") && t->min_lr == 0 && t->ema == 0);
    CHECK(t->p_drop_ref == 0.1 && t->p_drop_pose == 0.1);
    CHECK(t->log_every == 10 && t->val_every == 50 && t->ckpt_every == 50 && t->keep_ckpts == 2 && t->val_batches == 2);
    CHECK(!strcmp(t->backend, "cpu"));
    CHECK(d.text && !strcmp(d.text, ""));
    deck_free(&d);
    printf("ok   defaults\n");
}

static void test_shipped(const char *inputs) {
    char path[1024];
    Deck d;
    snprintf(path, sizeof path, "%s/tiny.ini", inputs);
    deck_load(&d, path);
    CHECK(d.model.F == 4 && d.model.H == 16 && d.model.D == 32 && d.model.L == 3 && d.model.Cg == 8);
    CHECK(!strcmp(d.train.init, "") && !strcmp(d.train.optimizer, "adamw") && d.train.batch == 2);
    CHECK(d.data.frames >= d.model.F && !strcmp(d.data.dir, "data"));
    CHECK(d.text && strstr(d.text, "[model]"));
    deck_free(&d);

    snprintf(path, sizeof path, "%s/small.ini", inputs);
    deck_load(&d, path);
    ModelShape small = {.F = 8, .C = 3, .H = 32, .W = 32, .p = 4, .D = 128, .NH = 4, .L = 6,
                        .mlp_ratio = 4, .Cp = 3, .s = 2, .Cg = 16, .frame_embed = "input"};
    CHECK(memcmp(&d.model, &small, sizeof small) == 0);
    CHECK(d.train.batch == 4 && d.train.lr == 3e-4 && !strcmp(d.train.lr_schedule, "cosine") && d.train.warmup > 0);
    deck_free(&d);

    snprintf(path, sizeof path, "%s/paper.ini", inputs);
    deck_load(&d, path);
    ModelShape paper = {.F = 16, .C = 4, .H = 64, .W = 64, .p = 2, .D = 1152, .NH = 16, .L = 28,
                        .mlp_ratio = 4, .Cp = 3, .s = 8, .Cg = 64, .frame_embed = "temporal"};
    CHECK(memcmp(&d.model, &paper, sizeof paper) == 0);
    CHECK(d.train.batch == 1 && d.train.lr == 1e-5 && !strcmp(d.train.backend, "cuda"));
    deck_free(&d);
    printf("ok   shipped decks\n");
}

static int same_config(const Deck *a, const Deck *b) {
    return !memcmp(&a->model, &b->model, sizeof a->model) && !memcmp(&a->data, &b->data, sizeof a->data) &&
           !memcmp(&a->train, &b->train, sizeof a->train);
}

static void test_overrides(void) {
    Deck d, again;
    deck_parse_string(&d, "[train]\nsteps = 5\noptimizer = adamw ; inline comment\n[data]\ndir = some/where", "ov");
    deck_override(&d, "train.steps=20");
    deck_override(&d, "  train.lr = 2e-4 ");
    deck_override(&d, "train.optimizer=sgd");
    deck_override(&d, "data.dir=/tmp/x y");
    deck_override(&d, "model.F=1");
    CHECK(d.train.steps == 20 && d.train.lr == 2e-4 && !strcmp(d.train.optimizer, "sgd"));
    CHECK(!strcmp(d.data.dir, "/tmp/x y") && d.model.F == 1);
    CHECK(strstr(d.text, "# --set train.steps=20") != NULL);
    /* the stored text reproduces the run */
    deck_parse_string(&again, d.text, "stored");
    CHECK(same_config(&d, &again));
    deck_free(&again);
    deck_free(&d);

    /* a key given twice: the last one wins, like an override */
    deck_parse_string(&d, "[train]\nsteps = 5\n[model]\nD = 64\n[train]\nsteps = 7\n", "twice");
    CHECK(d.train.steps == 7 && d.model.D == 64);
    deck_free(&d);
    printf("ok   overrides\n");
}

static void test_bad_decks(void) {
    bad_deck("unknown_key", "[train]\nsteps = 3\nstepz = 3\n", "stepz");
    bad_deck("unknown_key_line", "[train]\nsteps = 3\nstepz = 3\n", "line 3");
    bad_deck("unknown_section", "[trian]\nsteps = 3\n", "trian");
    bad_deck("empty_unknown_section", "[model]\nD = 32\n[extra]\n", "extra");
    bad_deck("outside_section", "steps = 3\n", "steps");
    bad_deck("bad_integer", "[train]\nsteps = 10x\n", "train.steps");
    bad_deck("float_for_integer", "[train]\nbatch = 2.5\n", "train.batch");
    bad_deck("empty_integer", "[model]\nD =\n", "model.D");
    bad_deck("negative_steps", "[train]\nsteps = -5\n", "train.steps");
    bad_deck("zero_batch", "[train]\nbatch = 0\n", "train.batch");
    bad_deck("negative_seed", "[data]\nseed = -1\n", "data.seed");
    bad_deck("bad_float", "[train]\nlr = 1e-4abc\n", "train.lr");
    bad_deck("zero_lr", "[train]\nlr = 0\n", "train.lr");
    bad_deck("nan_lr", "[train]\nlr = nan\n", "train.lr");
    bad_deck("probability", "[train]\np_drop_ref = 1.5\n", "train.p_drop_ref");
    bad_deck("ema_one", "[train]\nema = 1\n", "train.ema");
    bad_deck("bad_optimizer", "[train]\noptimizer = adam\n", "train.optimizer");
    bad_deck("bad_schedule", "[train]\nlr_schedule = linear\n", "train.lr_schedule");
    bad_deck("bad_backend", "[train]\nbackend = tpu\n", "train.backend");
    bad_deck("bad_frame_embed", "[model]\nframe_embed = output\n", "model.frame_embed");
    bad_deck("H_not_multiple_of_p", "[model]\nH = 15\n", "model.H");
    bad_deck("D_not_divisible_by_NH", "[model]\nD = 36\nNH = 8\n", "model.D");
    bad_deck("s_not_power_of_two", "[model]\ns = 3\n", "model.s");
    char blocks[64], blocks_want[64];
    snprintf(blocks, sizeof blocks, "[model]\nL = %d\n", EP_MAX_BLOCKS);
    Deck most;
    deck_parse_string(&most, blocks, "most_blocks"); /* the limit itself is allowed */
    CHECK(most.model.L == EP_MAX_BLOCKS);
    deck_free(&most);
    snprintf(blocks, sizeof blocks, "[model]\nL = %d\n", EP_MAX_BLOCKS + 1);
    snprintf(blocks_want, sizeof blocks_want, "model.L = '%d' is out of range", EP_MAX_BLOCKS + 1);
    bad_deck("too_many_blocks", blocks, blocks_want);
    snprintf(blocks, sizeof blocks, "model.L=%d", EP_MAX_BLOCKS + 1);
    bad_override(blocks, blocks_want);
    bad_deck("frames_too_few", "[model]\nF = 8\n[data]\nframes = 10\nframe_stride = 2\n", "data.frames");
    bad_deck("min_lr_above_lr", "[train]\nlr = 1e-4\nmin_lr = 1e-3\n", "train.min_lr");
    bad_deck("val_without_batches", "[train]\nval_every = 5\nval_batches = 0\n", "train.val_batches");
    bad_deck("val_without_videos", "[data]\nn_val = 0\n", "data.n_val");
    char longline[400];
    snprintf(longline, sizeof longline, "[data]\ndir = %0300d\n", 7);
    bad_deck("line_too_long", longline, "line 2: line longer than");
    bad_deck("syntax_error", "[train]\nsteps = 3\nthis line has no equals sign\n", "line 3");
    bad_deck("unclosed_section", "[train\nsteps = 3\n", "line 1");
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/no_such_deck.ini", workdir);
    expect_death("missing_file", load_file, missing, "no_such_deck.ini");
}

static void test_bad_overrides(void) {
    bad_override("train.stepz=3", "stepz");
    bad_override("train.steps=abc", "train.steps");
    bad_override("train.steps=-1", "train.steps");
    bad_override("optim.lr=1", "optim");
    bad_override("steps=3", "steps=3");
    bad_override("train.steps", "train.steps");
    bad_override("model.F=100", "data.frames");
    bad_override("model.H=15", "model.H");
    bad_override("train.out_dir=a;b", "train.out_dir");
}

static void mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
    mkdir(buf, 0755);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <inputs dir> <work dir>\n", argv[0]);
        return 2;
    }
    workdir = argv[2];
    mkdir_p(workdir);
    test_defaults();
    test_shipped(argv[1]);
    test_overrides();
    test_bad_decks();
    test_bad_overrides();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all deck tests passed\n");
    return 0;
}

/* entprog train <deck> [--resume CKPT] [--set section.key=value ...] */
#include "cli/args.h"
#include "cli/commands.h"
#include "deck/deck.h"
#include "train/train.h"
#include <stddef.h>

int cmd_train(int argc, char **argv) {
    const char *deck_path = NULL, *resume = NULL;
    ArgList sets = {0};
    const ArgOpt opts[] = {
        {"--resume", ARG_STR, &resume, .what = "checkpoint to continue from (weights, optimizer, step, random stream)"},
        {"--set", ARG_LIST, &sets, .what = "section.key=value: overrides a deck key (repeatable, applied in order)"},
    };
    ArgSpec spec = {"train", &deck_path, opts, sizeof opts / sizeof *opts, NULL};
    if (!args_parse(&spec, argc, argv)) return 0;
    Deck deck;
    deck_load(&deck, deck_path);
    for (int i = 0; i < sets.n; i++) deck_override(&deck, sets.v[i]);
    args_list_free(&sets);
    Trainer tr;
    trainer_setup(&tr, &deck, resume);
    trainer_run(&tr);
    trainer_free(&tr);
    deck_free(&deck);
    return 0;
}

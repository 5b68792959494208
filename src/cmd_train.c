/* entprog train <deck> [--resume CKPT] [--set section.key=value ...] */
#include "commands.h"
#include "deck.h"
#include "die.h"
#include "train.h"
#include <string.h>

int cmd_train(int argc, char **argv) {
    const char *deck_path = NULL, *resume = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--set")) {
            if (i + 1 >= argc) ep_die("train: %s needs a value", argv[i]);
            if (!strcmp(argv[i], "--resume")) resume = argv[++i];
            else i++; /* applied after the deck is loaded */
        } else if (argv[i][0] == '-') {
            ep_die("train: unknown option '%s' (expected --resume CKPT or --set section.key=value)", argv[i]);
        } else if (!deck_path) {
            deck_path = argv[i];
        } else {
            ep_die("train: unexpected argument '%s' (one deck only)", argv[i]);
        }
    }
    if (!deck_path) ep_die("train: no input deck given (usage: entprog train <deck> [--resume CKPT] [--set k=v])");
    Deck deck;
    deck_load(&deck, deck_path);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--set")) deck_override(&deck, argv[++i]);
    Trainer tr;
    trainer_setup(&tr, &deck, resume);
    trainer_run(&tr);
    trainer_free(&tr);
    deck_free(&deck);
    return 0;
}

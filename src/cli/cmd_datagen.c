/* entprog datagen <deck>: write the synthetic dataset the deck's [data] section describes. */
#include "cli/args.h"
#include "cli/commands.h"
#include "data/datagen.h"
#include "deck/deck.h"
#include <stddef.h>

int cmd_datagen(int argc, char **argv) {
    const char *deck_path = NULL;
    ArgSpec spec = {"datagen", &deck_path, NULL, 0,
                    "writes <data.dir>/train.h5, val.h5, test.h5 and preview.png\n"
                    "(a relative data.dir is taken from the current working directory)"};
    if (!args_parse(&spec, argc, argv)) return 0;
    Deck d;
    deck_load(&d, deck_path);
    datagen_run(&d);
    deck_free(&d);
    return 0;
}

/* entprog datagen <deck>: write the synthetic dataset the deck's [data] section describes. */
#include <stdio.h>
#include <string.h>
#include "commands.h"
#include "datagen.h"
#include "deck.h"

int cmd_datagen(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: entprog datagen <deck.ini>\n"
                        "  writes <data.dir>/train.h5, val.h5, test.h5 and preview.png\n"
                        "  (a relative data.dir is taken from the current working directory)\n");
        return (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) ? 0 : 2;
    }
    Deck d;
    deck_load(&d, argv[1]);
    datagen_run(&d);
    deck_free(&d);
    return 0;
}

/* libFuzzer target: the input deck parser (src/deck/deck.c) and its --set
 * overrides. Every input must end in a parsed deck or one clear error
 * (ep_die, caught here by ep_die_jump): no crash, no hang, no sanitizer report. */
#include "core/die.h"
#include "deck/deck.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the first line, if it starts with "--set ", is an override; the rest is the deck */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    char *deck = text, *set = NULL;
    if (!strncmp(text, "--set ", 6)) {
        char *nl = strchr(text, '\n');
        set = text + 6;
        deck = nl ? nl + 1 : text + size;
        if (nl) *nl = 0;
    }
    jmp_buf jump;
    static Deck d; /* static: setjmp/longjmp keep its address valid */
    if (!setjmp(jump)) {
        ep_die_jump(&jump);
        deck_parse_string(&d, deck, "fuzz.ini");
        if (set) deck_override(&d, set);
    }
    ep_die_jump(NULL);
    free(text);
    return 0;
}

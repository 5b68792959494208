/* The static scene behind the dancer: a textured wall and a floor. */
#pragma once
#include "media/raster.h"
#include "core/rng.h"

#define BACKDROP_GRID 5 /* value-noise lattice cells per side */

enum { BACKDROP_VGRAD, BACKDROP_HGRAD, BACKDROP_NOISE, BACKDROP_STRIPES, BACKDROP_KINDS };

typedef struct {
    int kind;
    int w, h;
    float wall0[3], wall1[3];   /* the two wall colours the texture mixes */
    float floor0[3], floor1[3]; /* floor at its far and near edge */
    float floor_y;              /* pixels; the floor starts here (h: no floor) */
    float stripe_period, stripe_angle;
    float noise[BACKDROP_GRID + 1][BACKDROP_GRID + 1];
} Backdrop;

void backdrop_sample(Backdrop *b, Rng *r, int W, int H, float ground_y);
void backdrop_draw(const Backdrop *b, Canvas *c);

/* `entprog import-video`: real videos of one person with their OpenPose
 * keypoints or their rendered pose videos, turned into the dataset files
 * `entprog train` reads (docs/data.md). */
#pragma once
#include "deck/deck.h"

typedef struct {
    const char *videos; /* folder of video files and picture folders */
    const char *poses;  /* folder of <video name>/ *.json, one per source frame; or NULL and: */
    const char *pose_videos; /* folder of rendered pose videos <video name>.mp4 (or frame folders) */
    const char *out;    /* NULL: the deck's data.dir */
    double fps;         /* frames per second of the dataset; 0: the deck's data.fps */
    double src_fps;     /* 0: the container's rate (picture folders: folder_fps) */
    double folder_fps;  /* frame rate of picture folders (0: 30) */
    double min_conf;    /* joints below it are left out */
    double margin;      /* crop margin around the keypoints' box, in box sizes */
    int centre_crop;    /* 1: the largest centred crop instead of the person's box */
    int normalized;     /* keypoints in [0, 1] of the frame instead of pixels */
    int skip_bad;
    int val, test;      /* videos per split; -1: 10% each, at least 1 from 3 videos on */
    long long seed;
    int max_clips;      /* clips per video at most; 0: all */
} ImportOptions;

/* Every rank of MPI_COMM_WORLD calls it; the ranks import different videos
 * and write each split file together. Dies naming the first bad file unless
 * skip_bad. */
void import_video_run(const Deck *d, const ImportOptions *o);

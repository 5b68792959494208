/* entprog import-video <deck> --videos DIR (--poses DIR | --pose-videos DIR)
 * [options]: real videos with their OpenPose keypoints, or with pose videos
 * already rendered, into the deck's dataset files (docs/data.md). */
#include "cli/args.h"
#include "cli/commands.h"
#include "core/die.h"
#include "data/import_video.h"
#include "deck/deck.h"
#include <limits.h>
#include <stddef.h>

int cmd_import_video(int argc, char **argv) {
    const char *deck_path = NULL;
    ImportOptions o = {.min_conf = 0.3, .margin = 0.15, .val = -1, .test = -1};
    int has_seed = 0;
    const ArgOpt opts[] = {
        {"--videos", ARG_STR, &o.videos, .required = 1, .what = "folder of videos (.mp4 .webm .mov ...) and frame folders"},
        {"--poses", ARG_STR, &o.poses, .what = "folder of <video name>/*.json OpenPose files, one per frame"},
        {"--pose-videos", ARG_STR, &o.pose_videos,
         .what = "instead of --poses: folder of rendered pose videos <video name>.mp4 (or frame folders)"},
        {"--out", ARG_STR, &o.out, .what = "output folder (default: the deck's data.dir)"},
        {"--fps", ARG_REAL, &o.fps, .what = "frame rate of the dataset (default: the deck's data.fps)"},
        {"--src-fps", ARG_REAL, &o.src_fps, .what = "frame rate of every source, overriding the videos' own"},
        {"--folder-fps", ARG_REAL, &o.folder_fps, .what = "frame rate of frame folders (default 30)"},
        {"--min-conf", ARG_REAL, &o.min_conf, .what = "joints below this confidence are left out (default 0.3)"},
        {"--margin", ARG_REAL, &o.margin, .what = "crop margin around the person's box, in box sizes (default 0.15)"},
        {"--centre-crop", ARG_FLAG, &o.centre_crop, .what = "the largest centred crop instead of the person's box"},
        {"--normalized", ARG_FLAG, &o.normalized, .what = "keypoints are in [0, 1] of the frame, not in pixels"},
        {"--val", ARG_INT, &o.val, 0, INT_MAX, .what = "validation videos (default: 10%, at least 1 from 3 videos)"},
        {"--test", ARG_INT, &o.test, 0, INT_MAX, .what = "test videos (default: 10%, at least 1 from 3 videos)"},
        {"--seed", ARG_INT64, &o.seed, 0, LLONG_MAX, .what = "seed of the split by video (default: the deck's data.seed)",
         .given = &has_seed},
        {"--max-clips", ARG_INT, &o.max_clips, 0, INT_MAX, .what = "clips per video at most (default 0: all)"},
        {"--skip-bad", ARG_FLAG, &o.skip_bad, .what = "skip bad videos and list them at the end, instead of stopping"},
    };
    ArgSpec spec = {"import-video", &deck_path, opts, sizeof opts / sizeof *opts,
                    "writes <out>/train.h5, val.h5, test.h5: each video cut into clips of data.frames frames at\n"
                    "model.H x model.W, resampled to --fps, with pose maps drawn from the keypoints (--poses), or\n"
                    "cut from the pose videos with the same crop (--pose-videos: the person's box is that of the\n"
                    "pose pixels, those with a channel >= 64, over the frames used; no /keypoints written)"};
    if (!args_parse(&spec, argc, argv)) return 0;
    if (!o.poses == !o.pose_videos) ep_die("import-video: give one of --poses (OpenPose JSON) and --pose-videos");
    if (!(o.fps >= 0) || !(o.src_fps >= 0) || !(o.folder_fps >= 0))
        ep_die("import-video: --fps, --src-fps and --folder-fps must be > 0");
    if (!(o.min_conf >= 0 && o.min_conf <= 1)) ep_die("import-video: --min-conf %g is not in [0, 1]", o.min_conf);
    if (!(o.margin >= 0 && o.margin <= 10)) ep_die("import-video: --margin %g is not in [0, 10]", o.margin);
    Deck d;
    deck_load(&d, deck_path);
    if (!has_seed) o.seed = (long long)(d.data.seed & 0x7fffffffffffffffull);
    import_video_run(&d, &o);
    deck_free(&d);
    return 0;
}

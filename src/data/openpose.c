/* OpenPose JSON through Jansson (Debian's libjansson, as for safetensors headers). */
#include "data/openpose.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPENPOSE_MAX_BYTES (16 << 20) /* a pose file is a few kB; bigger is not a pose file */

/* Where our joint k sits in a COCO-18 and a BODY_25 keypoint list: both start
 * nose, neck, arms; BODY_25 has a mid-hip (8) before the legs. */
static int source_index(int k, int n_kp) { return n_kp == 25 && k >= J_RHIP ? k + 1 : k; }

static char *read_all(const char *path, char *err, size_t errn) {
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, errn, "'%s': cannot open the pose file", path), NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > OPENPOSE_MAX_BYTES) {
        fclose(f);
        return snprintf(err, errn, "'%s': not a pose file (%ld bytes)", path, n), NULL;
    }
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = 0;
    return buf;
}

int openpose_read(const char *path, BodyPose *out, char *err, size_t errn) {
    memset(out, 0, sizeof *out);
    char *text = read_all(path, err, errn);
    if (!text) return -1;
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    free(text);
    if (!root) return snprintf(err, errn, "'%s': not valid JSON (line %d: %s)", path, jerr.line, jerr.text), -1;
    int rc = -1;
    json_t *people = json_object_get(root, "people");
    if (!json_is_array(people)) {
        snprintf(err, errn, "'%s': no \"people\" array (not OpenPose JSON)", path);
        goto done;
    }
    float best = -1;
    size_t p;
    json_t *person;
    json_array_foreach(people, p, person) {
        json_t *kp = json_object_get(person, "pose_keypoints_2d");
        int n = json_is_array(kp) ? (int)json_array_size(kp) : -1;
        if (n != 18 * 3 && n != 25 * 3) {
            snprintf(err, errn, "'%s': person %zu: pose_keypoints_2d has %d values, expected 54 (COCO-18) or 75 (BODY_25)",
                     path, p, n);
            goto done;
        }
        BodyPose b = {.people = 0};
        float sum = 0;
        for (int k = 0; k < FIG_NJOINTS; k++) {
            int i = source_index(k, n / 3);
            json_t *x = json_array_get(kp, 3 * i), *y = json_array_get(kp, 3 * i + 1), *c = json_array_get(kp, 3 * i + 2);
            if (!json_is_number(x) || !json_is_number(y) || !json_is_number(c)) {
                snprintf(err, errn, "'%s': person %zu: keypoint %d is not three numbers", path, p, i);
                goto done;
            }
            b.x[k] = json_number_value(x), b.y[k] = json_number_value(y);
            double q = json_number_value(c);
            b.conf[k] = q > 0 ? (float)q : 0;
            sum += b.conf[k];
        }
        if (sum > best) best = sum, *out = b; /* the most confident person is the dancer */
    }
    out->people = (int)json_array_size(people);
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* files.h - temporary folders and files for the cmocka tests (include
 * after cmocka.h). */
#ifndef SIO_TEST_FILES_H
#define SIO_TEST_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Creates a fresh folder /tmp/<prefix>.XXXXXX; its path goes to buf. */
static inline void test_make_dir(char *buf, size_t size, const char *prefix) {
    snprintf(buf, size, "/tmp/%s.XXXXXX", prefix);
    if (mkdtemp(buf) == NULL) fail_msg("mkdtemp %s failed", buf);
}

/* Writes text to dir/name (the folder must exist). */
static inline void test_write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) fail_msg("cannot write %s", path);
    fputs(text, f);
    if (fclose(f) != 0) fail_msg("cannot write %s", path);
}

/* Removes dir and everything in it; 0 on success. */
static inline int test_remove_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

#endif

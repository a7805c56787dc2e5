/* suggest.c - the names closest to a word (see suggest.h). */
#include "suggest.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

size_t sio_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Does hay contain needle, ignoring ASCII case? */
static int contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return 1;
    return n == 0;
}

/* How far cand is from word, or SIZE_MAX when it is not close. */
static size_t closeness(const char *word, size_t wlen, const char *cand) {
    if (strcmp(word, cand) == 0) return SIZE_MAX;
    size_t d = sio_edit_distance(word, cand);
    size_t limit = wlen / 3 > 2 ? wlen / 3 : 2;
    if (d <= limit) return d;
    if (wlen >= 3 && (contains(cand, word) || contains(word, cand))) {
        /* after every edit-distance match, shortest difference first */
        size_t lc = strlen(cand);
        return 64 + (lc > wlen ? lc - wlen : wlen - lc);
    }
    return SIZE_MAX;
}

size_t sio_suggest(const char *word, const char *const *cands, size_t ncands,
                   const char **out, size_t max) {
    size_t dist[16];
    if (max > sizeof dist / sizeof dist[0]) max = sizeof dist / sizeof dist[0];
    size_t n = 0, wlen = strlen(word);
    for (size_t i = 0; i < ncands; i++) {
        if (cands[i] == NULL || cands[i][0] == '\0') continue;
        size_t d = closeness(word, wlen, cands[i]);
        if (d == SIZE_MAX) continue;
        /* insertion into the sorted top `max` */
        size_t pos = n;
        while (pos > 0 && dist[pos - 1] > d) pos--;
        if (pos >= max) continue;
        size_t last = n < max ? n : max - 1;
        for (size_t k = last; k > pos; k--) dist[k] = dist[k - 1], out[k] = out[k - 1];
        dist[pos] = d;
        out[pos] = cands[i];
        if (n < max) n++;
    }
    return n;
}

/*
 * suggest.h - "did you mean": the names closest to a word, for every error
 * that names something unknown (a setting, a flag, a workflow).
 */
#ifndef SIO_SUGGEST_H
#define SIO_SUGGEST_H

#include <stddef.h>

/* Levenshtein distance of a and b, ignoring ASCII case; SIZE_MAX when
 * either is longer than 63 bytes. */
size_t sio_edit_distance(const char *a, const char *b);

/* Writes into out[0 .. max) the candidates close to word, closest first
 * (ties in candidate order), and returns how many.  Close: within
 * max(2, strlen(word) / 3) edits, or, for a word of 3 bytes or more,
 * containing it or contained in it (ignoring case).  A candidate equal to
 * word is not a suggestion.  out holds pointers into cands (not owned);
 * NULL entries of cands are skipped. */
size_t sio_suggest(const char *word, const char *const *cands, size_t ncands,
                   const char **out, size_t max);

#endif

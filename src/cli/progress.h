/*
 * progress.h - one status line for long CLI runs (send --lines, replay),
 * redrawn in place on a terminal at most five times a second and erased
 * at the end, so it never mixes with what goes to stdout or to a file.
 * When the stream is not a terminal nothing is drawn.
 */
#ifndef SIO_PROGRESS_H
#define SIO_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct sio_progress {
    FILE *out;        /* NULL: not a terminal, draw nothing */
    int64_t start_ms; /* monotonic */
    int64_t drawn_ms; /* when the line was last drawn, 0 = never */
} sio_progress;

/* Starts timing; draws on out (borrowed) only when it is a terminal. */
void sio_progress_start(sio_progress *p, FILE *out);

/* Redraws the line with the printf-formatted text, unless it was drawn
 * less than 200 ms ago. */
void sio_progress_draw(sio_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Erases the line (when one was drawn), before other output or at the
 * end; the next draw draws it again at once. */
void sio_progress_erase(sio_progress *p);

/* Milliseconds since start (at least 1), for rates. */
int64_t sio_progress_elapsed_ms(const sio_progress *p);

#endif

/* progress.c - see progress.h. */
#include "progress.h"

#include <stdarg.h>
#include <unistd.h>

#include "cli.h"

void sio_progress_start(sio_progress *p, FILE *out) {
    p->out = out && isatty(fileno(out)) ? out : NULL;
    p->start_ms = sio_cli_now_ms();
    p->drawn_ms = 0;
}

void sio_progress_draw(sio_progress *p, const char *fmt, ...) {
    int64_t now = sio_cli_now_ms();
    if (p->out == NULL || (p->drawn_ms && now - p->drawn_ms < 200)) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r", p->out);
    vfprintf(p->out, fmt, ap);
    fputs("\033[K", p->out); /* erase what a longer earlier line left */
    fflush(p->out);
    va_end(ap);
    p->drawn_ms = now;
}

void sio_progress_erase(sio_progress *p) {
    if (p->out && p->drawn_ms) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
    p->drawn_ms = 0;
}

int64_t sio_progress_elapsed_ms(const sio_progress *p) {
    int64_t e = sio_cli_now_ms() - p->start_ms;
    return e > 0 ? e : 1;
}

/* sio_err.c - names and classes of error codes; see sio_err.h. */
#include "sio_err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name;
    sio_errclass cls;
} codes[] = {
#define SIO_X_(name, cls, desc) {#name, SIO_CLASS_##cls},
#define SIO_CLASS_T SIO_TRANSIENT
#define SIO_CLASS_P SIO_PERMANENT
    SIO_ERR_MAP(SIO_X_)
#undef SIO_X_
};

const char *sio_code_name(sio_code code) {
    if ((unsigned)code >= SIO_E__COUNT) return "UNKNOWN";
    return codes[code].name;
}

sio_errclass sio_code_class(sio_code code) {
    if ((unsigned)code >= SIO_E__COUNT) return SIO_PERMANENT;
    return codes[code].cls;
}

const char *sio_class_name(sio_errclass cls) {
    return cls == SIO_TRANSIENT ? "transient" : "permanent";
}

int sio_err_set(sio_err *err, sio_code code, const char *fmt, ...) {
    if (err == NULL) return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

void sio_err_clear(sio_err *err) {
    if (err == NULL) return;
    err->code = SIO_E_OK;
    err->msg[0] = '\0';
}

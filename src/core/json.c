/*
 * json.c - strict parsing and compact encoding on jansson (see json.h).
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#define SIO_JSON_READ (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)
#define SIO_JSON_WRITE (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

json_t *sio_json_parse(const char *text, size_t len, sio_err *err) {
    json_error_t je;
    json_t *v = json_loadb(text ? text : "", text ? len : 0, SIO_JSON_READ, &je);
    if (v == NULL)
        sio_err_set(err, SIO_E_PARSE, "malformed JSON: %s at line %d, column %d", je.text,
                    je.line, je.column);
    return v;
}

char *sio_json_dump(const json_t *v, size_t *len) {
    char *out = json_dumps(v, SIO_JSON_WRITE);
    if (len) *len = out ? strlen(out) : 0;
    return out;
}

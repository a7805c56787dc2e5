/* envelope.c - see envelope.h. */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "json.h"
#include "kafka.h"
#include "log.h"

/* --- reading -----------------------------------------------------------------*/

int sio_topic_check(const char *topic, size_t len, sio_err *err) {
    if (len == 0) return sio_err_set(err, SIO_E_INVAL, "is empty");
    if (len > SIO_TOPIC_MAX)
        return sio_err_set(err, SIO_E_INVAL, "is %zu characters long (Kafka allows %d)", len,
                           SIO_TOPIC_MAX);
    if ((len == 1 && topic[0] == '.') || (len == 2 && topic[0] == '.' && topic[1] == '.'))
        return sio_err_set(err, SIO_E_INVAL, "is not a legal topic name");
    for (size_t i = 0; i < len; i++) {
        char c = topic[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return sio_err_set(err, SIO_E_INVAL,
                               "has a character Kafka does not allow at %zu (only A-Z a-z 0-9 . _ -)",
                               i);
    }
    if (len >= 2 && topic[0] == '_' && topic[1] == '_')
        return sio_err_set(err, SIO_E_INVAL, "is an internal topic");
    return 0;
}

/* The string member `name` of obj into *out: 0 when absent/null (*out =
 * NULL), 1 when a non-empty string, -1 when present with another type or
 * empty (*empty says which). */
static int string_member(const json_t *obj, const char *name, const char **out, int *empty) {
    const json_t *v = json_object_get(obj, name);
    *out = NULL;
    *empty = 0;
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    if (json_string_length(v) == 0) {
        *empty = 1;
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/* Checks reply_topic; an illegal one is recorded in env->reply_error. */
static void check_reply(sio_envelope *env, const char *commands_topic) {
    const json_t *v = json_object_get(env->command, "reply_topic");
    if (v == NULL || json_is_null(v)) return;
    sio_err e;
    if (!json_is_string(v)) {
        snprintf(env->reply_error, sizeof env->reply_error, "reply_topic must be a string");
        return;
    }
    const char *t = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(t) != len || sio_topic_check(t, len, &e) != 0) {
        snprintf(env->reply_error, sizeof env->reply_error, "reply_topic %s",
                 strlen(t) != len ? "has a NUL byte" : e.msg);
        return;
    }
    if (commands_topic && strcmp(t, commands_topic) == 0) {
        snprintf(env->reply_error, sizeof env->reply_error,
                 "reply_topic is the commands topic itself");
        return;
    }
    env->reply_topic = t;
}

int sio_envelope_parse(const char *bytes, size_t len, const char *commands_topic,
                       sio_envelope *env, sio_err *err) {
    memset(env, 0, sizeof *env);
    env->command = sio_json_parse(bytes, len, err);
    if (env->command == NULL) return -1;
    json_t *c = env->command;
    if (!json_is_object(c)) return sio_err_set(err, SIO_E_INVAL, "command is not a JSON object");
    check_reply(env, commands_topic);
    const char *cid, *wf;
    int empty;
    int r = string_member(c, "correlation_id", &cid, &empty);
    if (r == 0) return sio_err_set(err, SIO_E_INVAL, "missing correlation_id");
    if (empty) return sio_err_set(err, SIO_E_INVAL, "correlation_id is empty");
    if (r < 0) return sio_err_set(err, SIO_E_INVAL, "correlation_id must be a string");
    size_t cid_len = json_string_length(json_object_get(c, "correlation_id"));
    if (cid_len > SIO_CID_MAX)
        return sio_err_set(err, SIO_E_INVAL, "correlation_id is longer than %d bytes (%zu)",
                           SIO_CID_MAX, cid_len);
    if (strlen(cid) != cid_len)
        return sio_err_set(err, SIO_E_INVAL, "correlation_id has a NUL byte");
    env->correlation_id = cid;
    r = string_member(c, "workflow", &wf, &empty);
    if (r == 0) return sio_err_set(err, SIO_E_INVAL, "missing workflow");
    if (empty) return sio_err_set(err, SIO_E_INVAL, "workflow is empty");
    if (r < 0) return sio_err_set(err, SIO_E_INVAL, "workflow must be a string");
    /* A C string from here on (the worker's lookup, Lua): "noop\u0000x"
     * would otherwise run noop. */
    if (strlen(wf) != json_string_length(json_object_get(c, "workflow")))
        return sio_err_set(err, SIO_E_INVAL, "workflow has a NUL byte");
    env->workflow = wf;
    const json_t *attrs = json_object_get(c, "attrs");
    if (attrs != NULL && !json_is_null(attrs)) {
        if (!json_is_object(attrs)) return sio_err_set(err, SIO_E_INVAL, "attrs must be a JSON object");
        env->attrs = attrs;
    }
    return 0;
}

void sio_envelope_clear(sio_envelope *env) {
    json_decref(env->command);
    memset(env, 0, sizeof *env);
}

/* --- writing -----------------------------------------------------------------*/

/* `{"correlation_id":<cid>,"status":"<status>","result":` */
static int envelope_head(const sio_json_out *o, const char *cid, const char *status) {
    return o->write(o->ud, "{\"correlation_id\":", 18) != 0 ||
                   sio_json_write_string(o, cid, strlen(cid)) != 0 ||
                   o->write(o->ud, ",\"status\":", 10) != 0 ||
                   sio_json_write_string(o, status, strlen(status)) != 0 ||
                   o->write(o->ud, ",\"result\":", 10) != 0
               ? -1
               : 0;
}

char *sio_step_result_text(const char *cid, const char *step_id, const char *payload,
                           size_t len, const json_t *query, size_t *out_len) {
    sio_json_textbuf b = {0};
    sio_json_out o = sio_json_text_out(&b);
    int bad = envelope_head(&o, cid, "step_result") != 0 ||
              o.write(o.ud, "{\"step_id\":", 11) != 0 ||
              sio_json_write_string(&o, step_id, strlen(step_id)) != 0 ||
              o.write(o.ud, ",\"payload\":", 11) != 0 ||
              sio_json_write_string(&o, payload, len) != 0 ||
              o.write(o.ud, ",\"query\":", 9) != 0 ||
              (query ? sio_json_write_value(&o, query) : o.write(o.ud, "null", 4)) != 0 ||
              o.write(o.ud, "}}", 2) != 0;
    return sio_json_text_end(&b, bad, out_len);
}

char *sio_success_text(const char *cid, const json_t *result, size_t *out_len) {
    sio_json_textbuf b = {0};
    sio_json_out o = sio_json_text_out(&b);
    int bad = result == NULL || envelope_head(&o, cid, "success") != 0 ||
              sio_json_write_value(&o, result) != 0 || o.write(o.ud, "}", 1) != 0;
    return sio_json_text_end(&b, bad, out_len);
}

/* A string value, or null for NULL. */
static json_t *str_or_null(const char *s) {
    return s ? sio_json_text(s, strlen(s)) : json_null();
}

/* s cut to at most n bytes (on a UTF-8 boundary) with "..." appended. */
static json_t *shortened(const char *s, size_t n) {
    size_t len = strlen(s);
    if (len <= n) return sio_json_text(s, len);
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    char *b = malloc(n + 4);
    if (b == NULL) return NULL;
    memcpy(b, s, n);
    memcpy(b + n, "...", 4);
    json_t *v = sio_json_text(b, n + 3);
    free(b);
    return v;
}

static json_t *build(const sio_dlq_info *in) {
    char rec[40], fail[40];
    json_t *src = json_pack("{s:o,s:i,s:I,s:o}", "topic", str_or_null(in->source_topic),
                            "partition", (int)in->source_partition, "offset",
                            (json_int_t)in->source_offset, "timestamp",
                            in->source_timestamp >= 0 ? json_integer(in->source_timestamp)
                                                      : json_null());
    json_t *e = json_pack("{s:o,s:s,s:o,s:s,s:i,s:o,s:o}", "correlation_id",
                          str_or_null(in->correlation_id), "status", "error", "error",
                          str_or_null(in->error ? in->error : "failed"), "error_class",
                          sio_class_name(in->cls), "attempts", in->attempts, "workflow",
                          str_or_null(in->workflow), "step", str_or_null(in->step));
    if (e == NULL || src == NULL) {
        json_decref(e);
        json_decref(src);
        return NULL;
    }
    if (in->command) {
        json_object_set(e, "command", (json_t *)in->command);
    } else {
        char *b = sio_base64_encode(in->raw ? in->raw : "", in->raw ? in->raw_len : 0);
        json_object_set_new(e, "command_base64", b ? json_string(b) : json_null());
        free(b);
    }
    if (in->headers) json_object_set_new(e, "headers", sio_kafka_headers_json(in->headers));
    json_object_set_new(e, "source", src);
    json_object_set_new(e, "received_at",
                        json_string(sio_iso8601(in->received_ms, rec, sizeof rec)));
    json_object_set_new(e, "failed_at", json_string(sio_iso8601(in->failed_ms, fail, sizeof fail)));
    if (in->dead_letter_reason)
        json_object_set_new(e, "dead_letter",
                            json_pack("{s:o,s:o}", "topic", str_or_null(in->dead_letter_topic),
                                      "reason", str_or_null(in->dead_letter_reason)));
    return e;
}

/* Cuts the next field (step k of the order in envelope.h) from e, naming
 * it in cut.  Returns 0 when there is nothing left to cut. */
static int cut_next(json_t *e, json_t *cut, int k) {
    static const char *const strings[] = {"error", "workflow", "step", "correlation_id"};
    switch (k) {
    case 0:
        if (json_object_get(e, "command")) {
            json_object_del(e, "command");
            json_array_append_new(cut, json_string("command"));
        } else if (json_object_get(e, "command_base64")) {
            json_object_del(e, "command_base64");
            json_array_append_new(cut, json_string("command_base64"));
        }
        return 1;
    case 1:
        if (json_object_get(e, "headers")) {
            json_object_del(e, "headers");
            json_array_append_new(cut, json_string("headers"));
        }
        return 1;
    case 2:
    case 3:
    case 4:
    case 5: {
        const char *name = strings[k - 2];
        const json_t *v = json_object_get(e, name);
        if (json_is_string(v) && json_string_length(v) > 256) {
            json_object_set_new(e, name, shortened(json_string_value(v), 256));
            json_array_append_new(cut, json_string(name));
        }
        return 1;
    }
    case 6: {
        json_t *dl = json_object_get(e, "dead_letter");
        const json_t *r = dl ? json_object_get(dl, "reason") : NULL;
        if (json_is_string(r) && json_string_length(r) > 256) {
            json_object_set_new(dl, "reason", shortened(json_string_value(r), 256));
            json_array_append_new(cut, json_string("dead_letter.reason"));
        }
        return 1;
    }
    default:
        return 0;
    }
}

char *sio_dlq_encode(const sio_dlq_info *in, size_t max_bytes, int minimal, size_t *len) {
    json_t *e = build(in);
    if (e == NULL) return NULL;
    json_t *cut = json_array();
    char *text = NULL;
    for (int k = 0; cut; k++) {
        if (!minimal || k > 6) {
            text = sio_json_dump(e, len);
            if (text == NULL || *len <= max_bytes || !cut_next(e, cut, k)) break;
            free(text);
            text = NULL;
        } else {
            cut_next(e, cut, k);
        }
        if (json_array_size(cut) > 0) json_object_set(e, "truncated", cut);
    }
    json_decref(cut);
    json_decref(e);
    return text;
}

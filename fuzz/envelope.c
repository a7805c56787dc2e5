/*
 * envelope.c - fuzz target: a Kafka message value as a command
 * (src/service/envelope.h), and everything the service writes about it.
 *
 * The input is the message value.  Properties:
 *   - a command that parses has what the rules promise (a correlation id
 *     of 1..SIO_CID_MAX bytes without NUL, a workflow, a legal reply topic
 *     other than the commands topic, attrs an object or none);
 *   - its step result and success envelopes are strict JSON.
 * What the service writes to a DLQ about any input is fuzz/dlq.c's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzzlib.h"
#include "json.h"

#define COMMANDS "fz.commands"

static void check_parsed(const sio_envelope *env) {
    const char *cid = env->correlation_id;
    FZ_CHECK(cid != NULL && env->workflow != NULL, "parsed without correlation_id or workflow");
    const json_t *jc = json_object_get(env->command, "correlation_id");
    FZ_CHECK(strlen(cid) == json_string_length(jc) && *cid && strlen(cid) <= SIO_CID_MAX,
             "correlation_id of %zu bytes accepted", json_string_length(jc));
    FZ_CHECK(*env->workflow, "empty workflow accepted");
    FZ_CHECK(strlen(env->workflow) == json_string_length(json_object_get(env->command, "workflow")),
             "a workflow with a NUL byte accepted (it would run as '%s')", env->workflow);
    FZ_CHECK(env->attrs == NULL || json_is_object(env->attrs), "attrs not an object accepted");
    if (env->reply_topic) {
        sio_err e;
        FZ_CHECK(sio_topic_check(env->reply_topic, strlen(env->reply_topic), &e) == 0 &&
                     strcmp(env->reply_topic, COMMANDS) != 0,
                 "reply_topic '%s' accepted", env->reply_topic);
    }
    size_t n;
    char *sr = sio_step_result_text(cid, "s1", env->workflow, strlen(env->workflow), env->attrs, &n);
    FZ_CHECK(sr != NULL, "step result envelope: NULL");
    fz_check_json_text("step result", sr, n);
    free(sr);
    char *ok = sio_success_text(cid, env->attrs ? env->attrs : env->command, &n);
    FZ_CHECK(ok != NULL, "success envelope: NULL");
    fz_check_json_text("success", ok, n);
    free(ok);
}

void fz_target(const uint8_t *data, size_t size) {
    sio_envelope env;
    sio_err err;
    if (sio_envelope_parse((const char *)data, size, COMMANDS, &env, &err) == 0)
        check_parsed(&env);
    else
        FZ_CHECK(err.msg[0] != '\0', "an error without a message");
    sio_envelope_clear(&env);
}

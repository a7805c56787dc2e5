/*
 * record.h - what a finished command leaves under its dedupe key in Redis
 * (command.h step 4), and reading it back.
 *
 *   "done:" RESPONSE     at least once: the success envelope, as published
 *   "txn:" NETSTRINGS    exactly once: where the command came from, the
 *                        success envelope and every other message it
 *                        writes, in order
 *
 * A duplicate of a finished command (a record found when claiming) is
 * answered from the record without running anything.  In exactly-once
 * mode the record is stored before the transaction that publishes the
 * command's messages commits; when that transaction aborts (or the process
 * dies first), the same message is consumed again and finds a record whose
 * source is itself: it publishes every stored message again, in a new
 * transaction, and the workflow does not run twice.  A duplicate that
 * arrived at another offset is a different command: it gets the response
 * only (its step results were the original's).
 *
 * The txn: form is a sequence of netstrings ("<decimal length>:<bytes>,"),
 * binary-safe and cheap to read: source topic, source partition, source
 * offset, response, then per message a kind - "S" a step result (to the
 * reply topic, keyed by the correlation id), "P" a produce without a key,
 * "K" a produce with one - followed by the topic ("P", "K"), the key ("K")
 * and the value.
 */
#ifndef SIO_RECORD_H
#define SIO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"

/* One message a command writes besides its final message. */
typedef struct sio_record_msg {
    const char *topic; /* NULL: a step result (the reply topic, the correlation id as key) */
    size_t topic_len;
    const char *key;   /* NULL: no key (a step result's is the correlation id) */
    size_t key_len;
    const char *value;
    size_t len;
} sio_record_msg;

/* A record.  Strings point into the text it was read from (or are
 * borrowed from the caller when encoding); they are not NUL-terminated. */
typedef struct sio_record {
    int txn; /* 1: the txn: form (source and msgs are set) */
    const char *source_topic;
    size_t source_topic_len;
    int32_t source_partition;
    int64_t source_offset;
    const char *response;
    size_t response_len;
    sio_record_msg *msgs; /* read: malloc'd (sio_record_clear frees it) */
    size_t nmsgs;
} sio_record;

/* Encodes r: the done: form when r->txn is 0 (only the response counts),
 * else the txn: form.  Returns the text
 * (malloc'd, the caller frees; NUL-terminated) and its length in *len, or
 * NULL when out of memory. */
char *sio_record_encode(const sio_record *r, size_t *len);

/* Reads the value of a dedupe key.  Returns 1 with *r filled (clear it with
 * sio_record_clear) when it is a record, 0 when it is not one (a claim's
 * lease token), -1 with err set (SIO_E_PARSE) when it starts like a txn:
 * record but is malformed. */
int sio_record_parse(const char *bytes, size_t len, sio_record *r, sio_err *err);

/* Frees what sio_record_parse allocated and zeroes r. */
void sio_record_clear(sio_record *r);

#endif

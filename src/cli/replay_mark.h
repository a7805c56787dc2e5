/*
 * replay_mark.h - the marks that keep `replay` from sending the same DLQ
 * entry twice by accident.
 *
 * One Redis key per DLQ entry, in the Redis the service already uses:
 *
 *   <REPLAY_KEY_PREFIX><dlq topic>:<partition>:<offset>
 *
 * holding JSON: {"state": "sending" | "replayed", "at": "<ISO time>",
 * "target": "<topic>", "host": "<hostname>", "pid": n} and, once the
 * command is in Kafka, "target_partition" and "target_offset".  The key is
 * claimed with SET NX before the command is sent, so two replays running
 * at once never both send an entry; it becomes "replayed" when the
 * delivery report succeeds and is deleted when the delivery fails (a later
 * replay may try again).  A run that dies between the claim and the report
 * leaves "sending": later replays report it and skip it until --force
 * (sending it again could duplicate it; skipping it never loses it).
 *
 * Why keys rather than a committed consumer group: a group keeps one
 * position per partition, but replay chooses entries by filters and
 * ranges, so a position cannot say which entries went (a replay of
 * --workflow a would commit past the entries of workflow b).
 *
 * Each key expires with the DLQ's retention.ms (after that the entry it
 * marks is gone from Kafka); with infinite or unknown retention it does
 * not expire.  All calls block the calling thread (the CLI's only one).
 */
#ifndef SIO_REPLAY_MARK_H
#define SIO_REPLAY_MARK_H

#include <stdint.h>

#include "config.h"
#include "sio_err.h"

typedef struct sio_replay_marks sio_replay_marks;

/* Connects to cfg's Redis (sio_redis_open: AUTH when configured,
 * REDIS_TIMEOUT for the connection and each reply; cfg borrowed, must
 * outlive the marks).  ttl_ms > 0 expires marks after that long, 0 keeps
 * them.  NULL with err (SIO_E_REDIS naming the address) when Redis does
 * not answer or refuses. */
sio_replay_marks *sio_replay_marks_open(const sio_config *cfg, int64_t ttl_ms, sio_err *err);

/* Closes the connection.  NULL is fine. */
void sio_replay_marks_close(sio_replay_marks *m);

/* The entry (topic, partition, offset) of a DLQ. */
typedef struct sio_replay_key {
    const char *topic;
    int32_t partition;
    int64_t offset;
} sio_replay_key;

/* Claims the entry for sending to target ("sending").  Returns 0 when
 * claimed; 1 when the entry is marked already, with the mark's JSON text
 * in *seen (malloc'd, the caller frees); -1 on a Redis error.  With force
 * the claim replaces any mark and returns 0, the mark it replaced (or
 * NULL) in *seen, for sio_replay_mark_drop. */
int sio_replay_mark_claim(sio_replay_marks *m, const sio_replay_key *k, const char *target,
                          int force, char **seen, sio_err *err);

/* The entry's mark without claiming (for --dry-run): 0 none, 1 with
 * *seen as above, -1 on a Redis error. */
int sio_replay_mark_peek(sio_replay_marks *m, const sio_replay_key *k, char **seen, sio_err *err);

/* The command of a claimed entry is in Kafka at (target, partition,
 * offset): the mark says "replayed". */
int sio_replay_mark_done(sio_replay_marks *m, const sio_replay_key *k, const char *target,
                         int32_t partition, int64_t offset, sio_err *err);

/* The command of a claimed entry was not delivered: the claim goes, and
 * the mark a forced claim replaced (previous, or NULL) comes back. */
int sio_replay_mark_drop(sio_replay_marks *m, const sio_replay_key *k, const char *previous,
                         sio_err *err);

#endif

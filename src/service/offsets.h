/*
 * offsets.h - per-partition commit tracking (SPEC §3).
 *
 * The consumer dispatches messages to workers, which finish them in any
 * order.  Kafka commits a single position per partition ("everything below
 * this is handled"), so a commit must never pass an offset whose outcome is
 * not yet durably in Kafka.  This tracker keeps, per (topic, partition), the
 * offsets dispatched and not finished, and says when the committable
 * position - the lowest unfinished offset, or the highest tracked + 1 when
 * none is unfinished - moves forward.
 *
 * Generations.  Every sio_offsets_assign() starts a new generation for that
 * partition, numbered from one counter for the whole tracker (so numbers
 * never repeat, across partitions either).  sio_offsets_track() hands out
 * the generation, and sio_offsets_done() must quote it: a completion from
 * before a revoke (and any re-assign) is ignored and can never produce a
 * commit position for a partition we no longer own, or advance the new
 * owner's state.
 *
 * Cost.  Offsets of one partition are tracked in increasing order (gaps
 * allowed: compaction, transaction markers).  They live in a ring buffer
 * from the lowest unfinished offset to the highest tracked; done() finds its
 * entry by direct index when offsets are contiguous, else by binary search,
 * and pops finished entries off the front - O(1) amortised without gaps,
 * O(log n) with them.  Memory is one 16-byte entry per offset between the
 * lowest unfinished and the highest tracked (finished ones behind a slow one
 * included), so back-pressure should look at sio_offsets_partition_window()
 * as well as at the in-flight counts.
 *
 * Threads.  Not thread-safe, by design: the consumer thread owns the tracker
 * (workers report completions to it through the consumer's queue), which
 * keeps every operation lock-free and ordered with rebalance callbacks.
 */
#ifndef SIO_OFFSETS_H
#define SIO_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "sio_err.h"

typedef struct sio_offsets sio_offsets;

/* A new, empty tracker the caller owns (free with sio_offsets_destroy), or
 * NULL with err set (SIO_E_NOMEM). */
sio_offsets *sio_offsets_create(sio_err *err);

/* Frees t and all partition state.  NULL is fine. */
void sio_offsets_destroy(sio_offsets *t);

/* Starts owning (topic, partition) with a fresh generation and nothing in
 * flight.  Assigning a partition already assigned starts over as well (the
 * consumer will redeliver from the committed offset).  topic is copied.
 * Returns 0, or -1 with err set (SIO_E_NOMEM). */
int sio_offsets_assign(sio_offsets *t, const char *topic, int32_t partition, sio_err *err);

/* Stops owning (topic, partition): its in-flight offsets are forgotten and
 * later done() calls for them return 0.  Unknown partitions are ignored.
 * Take a final sio_offsets_position() first if you want to commit it. */
void sio_offsets_revoke(sio_offsets *t, const char *topic, int32_t partition);

/* Revokes every partition (eager rebalance, shutdown). */
void sio_offsets_revoke_all(sio_offsets *t);

/* Records that offset of an assigned partition was dispatched; *gen (may be
 * NULL) receives the generation that done() must quote.  Offsets must
 * increase per partition.  Returns 0, or -1 with err set: SIO_E_INVAL when
 * the partition is not assigned or offset is negative or not above the last
 * one tracked; SIO_E_NOMEM. */
int sio_offsets_track(sio_offsets *t, const char *topic, int32_t partition, int64_t offset,
                      uint64_t *gen, sio_err *err);

/* Records that offset's outcome is durably in Kafka.  Returns 1 and sets
 * *commit_to (may be NULL) to the new committable position when it moved
 * forward; 0 when it did not (an earlier offset is unfinished), and also 0,
 * ignoring the call, when gen is not the partition's current generation
 * (revoked, re-assigned) or offset is not in flight (never tracked, done
 * twice). */
int sio_offsets_done(sio_offsets *t, const char *topic, int32_t partition, int64_t offset,
                     uint64_t gen, int64_t *commit_to);

/* 1 when gen is the current generation of an assigned (topic, partition),
 * 0 when the partition was revoked or re-assigned since (or never was). */
int sio_offsets_current(const sio_offsets *t, const char *topic, int32_t partition, uint64_t gen);

/* The committable position of an assigned partition in its current
 * generation: 1 with *pos set once some done() advanced it, else 0. */
int sio_offsets_position(const sio_offsets *t, const char *topic, int32_t partition,
                         int64_t *pos);

/* Offsets tracked and not done, over all assigned partitions. */
size_t sio_offsets_inflight(const sio_offsets *t);

/* Offsets tracked and not done for one partition (0 when not assigned). */
size_t sio_offsets_partition_inflight(const sio_offsets *t, const char *topic,
                                      int32_t partition);

/* Entries held for one partition: from the lowest unfinished to the highest
 * tracked offset, finished ones included (0 when not assigned). */
size_t sio_offsets_partition_window(const sio_offsets *t, const char *topic, int32_t partition);

/* Called once per partition with a committable position; topic is
 * borrowed for the call. */
typedef void (*sio_offsets_each_fn)(void *ud, const char *topic, int32_t partition,
                                    int64_t commit_to);

/* Calls fn for every assigned partition whose position advanced in its
 * current generation (see sio_offsets_position), for a final commit on
 * shutdown or before a revoke.  fn must not change t.  Returns the number of
 * calls. */
size_t sio_offsets_each_committable(const sio_offsets *t, sio_offsets_each_fn fn, void *ud);

#endif

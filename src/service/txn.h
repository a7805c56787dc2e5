/*
 * txn.h - the exactly-once mode's transaction thread
 * (PROCESSING_GUARANTEE=exactly_once; docs/DESIGN.md "Exactly once").
 *
 * The service (consumer thread) hands over batches of finished commands
 * together with the positions that cover them; this thread owns the
 * transactional producer and writes each batch as one Kafka transaction,
 * consume-transform-produce style:
 *
 *   begin_transaction
 *   produce every message of every command (command.h sio_command_output)
 *   send_offsets_to_transaction(positions, the consumer's group metadata)
 *   commit_transaction
 *
 * so a read_committed consumer sees a command's messages exactly when its
 * offset is committed.  One batch at a time: the service gathers the next
 * while this one commits, and neither the consumer loop nor a worker ever
 * waits on a transaction (only a rebalance and the drain do).
 *
 * Outcomes (the batch comes back through the done callback):
 *   committed  every message is in Kafka and the positions are committed;
 *   aborted    an abortable error (a refused message, a broker-side fault,
 *              a stale group generation after a rebalance): the transaction
 *              was aborted, nothing of it is visible; messages refused for
 *              good are recorded on their command (sio_command_refuse).
 *              The service rewinds to the committed offsets and consumes
 *              again;
 *   fatal      the producer cannot go on (fenced by a newer instance with
 *              the same transactional.id, an epoch or authorization
 *              error): every later batch is fatal too; the service stops
 *              and exits 1 so the orchestrator restarts it;
 *   abandoned  stopped while the batch could not finish (the broker away
 *              at shutdown): nothing committed; the next owner of the
 *              partitions consumes the commands again.
 * Retriable errors (timeouts, coordinator moves) are retried in place.
 *
 * Threads: create and submit on the consumer thread; the batch, and the
 * commands in it, belong to this thread from submit until done (called on
 * this thread), then to the service again.
 */
#ifndef SIO_TXN_H
#define SIO_TXN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "command.h"
#include "sio_err.h"

typedef struct sio_txn sio_txn;

typedef enum sio_txn_outcome {
    SIO_TXN_COMMITTED,
    SIO_TXN_ABORTED,
    SIO_TXN_FATAL,
    SIO_TXN_ABANDONED,
} sio_txn_outcome;

/* One transaction's worth. */
typedef struct sio_txn_batch {
    sio_command *cmds; /* linked through done_next */
    size_t ncmds;
    rd_kafka_topic_partition_list_t *offsets;  /* positions to commit; owned */
    rd_kafka_consumer_group_metadata_t *group; /* owned */
    /* Set by the transaction thread before done. */
    sio_txn_outcome outcome;
    sio_err err;     /* why, unless committed */
    size_t nmsgs;    /* messages produced */
    int64_t took_ms; /* begin to commit (or abort) */
} sio_txn_batch;

/* Called on the transaction thread with a finished batch. */
typedef void (*sio_txn_done_fn)(sio_txn_batch *b, void *ud);

/* The delivery-report callback the transactional producer must be created
 * with (rd_kafka_conf_set_dr_msg_cb). */
void sio_txn_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* Initialises transactions on producer (borrowed; created with a
 * transactional.id and sio_txn_on_delivery), retrying for up to
 * timeout_ms, and starts the thread.  Returns NULL with err set
 * (SIO_E_KAFKA) when the brokers refuse or do not answer. */
sio_txn *sio_txn_start(rd_kafka_t *producer, int64_t timeout_ms, sio_txn_done_fn done, void *ud,
                       sio_err *err);

/* Hands b to the thread (there must be none in hand). */
void sio_txn_submit(sio_txn *t, sio_txn_batch *b);

/* Lets the batch in hand finish (retriable errors are no longer retried),
 * stops the thread and frees t.  Accepts NULL. */
void sio_txn_stop(sio_txn *t);

/* A new empty batch, or NULL when out of memory. */
sio_txn_batch *sio_txn_batch_new(void);

/* Frees b's offsets and group metadata, not its commands.  Accepts NULL. */
void sio_txn_batch_free(sio_txn_batch *b);

#endif

/* itutil.h - helpers for integration tests against the dev environment. */
#ifndef SIO_ITUTIL_H
#define SIO_ITUTIL_H

/* KAFKA_BROKERS from the environment; the test fails when it is unset.
 * Static storage owned by the environment. */
const char *it_brokers(void);

/* A topic name unique to this run: "<prefix>.<pid>.<time>".  Returned in a
 * static buffer, overwritten by the next call. */
const char *it_unique(const char *prefix);

#endif

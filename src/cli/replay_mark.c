/* replay_mark.c - replay's marks in Redis; see replay_mark.h. */
#include "replay_mark.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "redis_conn.h"

struct sio_replay_marks {
    redisContext *redis;
    const sio_config *cfg; /* borrowed */
    int64_t ttl_ms;        /* 0 = marks do not expire */
    char host[128];
};

/* A reply that is not an error, or NULL with err set (the reply freed). */
static redisReply *checked(sio_replay_marks *m, redisReply *r, const char *what, sio_err *err) {
    if (r != NULL && r->type != REDIS_REPLY_ERROR) return r;
    sio_err_set(err, SIO_E_REDIS, "redis at %s: %s: %s", m->cfg->redis_addr, what,
                r ? r->str : m->redis->errstr);
    if (r) freeReplyObject(r);
    return NULL;
}

sio_replay_marks *sio_replay_marks_open(const sio_config *cfg, int64_t ttl_ms, sio_err *err) {
    sio_replay_marks *m = calloc(1, sizeof *m);
    if (m == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "out of memory");
        return NULL;
    }
    m->cfg = cfg, m->ttl_ms = ttl_ms;
    if (gethostname(m->host, sizeof m->host) != 0) snprintf(m->host, sizeof m->host, "?");
    if (sio_redis_open(cfg, cfg->redis_timeout_ms, &m->redis, err) != SIO_REDIS_OPENED) {
        sio_replay_marks_close(m);
        return NULL;
    }
    return m;
}

void sio_replay_marks_close(sio_replay_marks *m) {
    if (m == NULL) return;
    if (m->redis) redisFree(m->redis);
    free(m);
}

/* The key of k (malloc'd). */
static char *key_of(const sio_replay_marks *m, const sio_replay_key *k) {
    char *key = NULL;
    if (asprintf(&key, "%s%s:%d:%lld", m->cfg->replay_key_prefix, k->topic,
                 (int)k->partition, (long long)k->offset) < 0)
        return NULL;
    return key;
}

/* The mark's JSON text (malloc'd): state, when, where to, by whom. */
static char *mark_text(const sio_replay_marks *m, const char *state, const char *target,
                       int32_t partition, int64_t offset) {
    char at[40];
    json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:i}", "state", state, "at",
                          sio_log_timestamp(at, sizeof at), "target", target, "host", m->host,
                          "pid", (int)getpid());
    if (v && offset >= 0) {
        json_object_set_new(v, "target_partition", json_integer(partition));
        json_object_set_new(v, "target_offset", json_integer(offset));
    }
    char *text = v ? sio_json_dump(v, NULL) : NULL;
    json_decref(v);
    return text;
}

/* SET key text [NX|XX] [PX ttl]: 1 when set, 0 when the condition failed,
 * -1 on error. */
static int set(sio_replay_marks *m, const char *key, const char *text, const char *cond,
               sio_err *err) {
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)m->ttl_ms);
    const char *argv[] = {"SET", key, text, "PX", ttl, cond};
    int argc = m->ttl_ms > 0 ? 5 : 3;
    if (cond) argv[argc++] = cond;
    redisReply *r = checked(m, redisCommandArgv(m->redis, argc, argv, NULL), "SET", err);
    if (r == NULL) return -1;
    int done = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return done;
}

/* GET key: 1 with *seen (malloc'd), 0 when none, -1 on error. */
static int get(sio_replay_marks *m, const char *key, char **seen, sio_err *err) {
    redisReply *r = checked(m, redisCommand(m->redis, "GET %s", key), "GET", err);
    if (r == NULL) return -1;
    int found = r->type == REDIS_REPLY_STRING;
    if (found && (*seen = strndup(r->str, r->len)) == NULL)
        found = sio_err_set(err, SIO_E_NOMEM, "out of memory");
    freeReplyObject(r);
    return found;
}

int sio_replay_mark_claim(sio_replay_marks *m, const sio_replay_key *k, const char *target,
                          int force, char **seen, sio_err *err) {
    *seen = NULL;
    char *key = key_of(m, k), *text = mark_text(m, "sending", target, 0, -1);
    int rc = key && text ? 1 : sio_err_set(err, SIO_E_NOMEM, "out of memory");
    if (rc == 1 && force) { /* keep what is replaced, for a drop */
        rc = get(m, key, seen, err) < 0 || set(m, key, text, NULL, err) < 0 ? -1 : 0;
        if (rc != 0) free(*seen), *seen = NULL;
    }
    /* rc: 1 = undecided.  A mark that expires between a failed SET NX and
     * the GET makes the GET find nothing: claim again. */
    for (int tries = 0; rc == 1 && tries < 3; tries++) {
        int now = set(m, key, text, "NX", err);
        if (now != 0) {
            rc = now > 0 ? 0 : -1;
            break;
        }
        int found = get(m, key, seen, err);
        if (found != 0) {
            rc = found; /* 1 with *seen, or -1 */
            break;
        }
    }
    if (rc == 1 && *seen == NULL)
        rc = sio_err_set(err, SIO_E_REDIS, "redis at %s: the mark of %s:%d:%lld keeps changing",
                         m->cfg->redis_addr, k->topic, (int)k->partition, (long long)k->offset);
    free(key);
    free(text);
    return rc;
}

int sio_replay_mark_peek(sio_replay_marks *m, const sio_replay_key *k, char **seen, sio_err *err) {
    *seen = NULL;
    char *key = key_of(m, k);
    int rc = key ? get(m, key, seen, err) : sio_err_set(err, SIO_E_NOMEM, "out of memory");
    free(key);
    return rc;
}

int sio_replay_mark_done(sio_replay_marks *m, const sio_replay_key *k, const char *target,
                         int32_t partition, int64_t offset, sio_err *err) {
    char *key = key_of(m, k), *text = mark_text(m, "replayed", target, partition, offset);
    int rc = key && text ? set(m, key, text, NULL, err)
                         : sio_err_set(err, SIO_E_NOMEM, "out of memory");
    free(key);
    free(text);
    return rc < 0 ? -1 : 0;
}

int sio_replay_mark_drop(sio_replay_marks *m, const sio_replay_key *k, const char *previous,
                         sio_err *err) {
    char *key = key_of(m, k);
    int rc = key == NULL ? sio_err_set(err, SIO_E_NOMEM, "out of memory") : 0;
    if (rc == 0 && previous) {
        rc = set(m, key, previous, NULL, err) < 0 ? -1 : 0;
    } else if (rc == 0) {
        redisReply *r = checked(m, redisCommand(m->redis, "DEL %s", key), "DEL", err);
        if (r) freeReplyObject(r);
        else rc = -1;
    }
    free(key);
    return rc;
}

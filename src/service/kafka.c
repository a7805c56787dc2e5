/* kafka.c - see kafka.h. */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

int sio_kafka_set(rd_kafka_conf_t *conf, const char *key, const char *val, sio_err *err) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return sio_err_set(err, SIO_E_CONFIG, "kafka property %s=%s: %s", key, val, errstr);
    return 0;
}

rd_kafka_conf_t *sio_kafka_conf(const char *brokers, const char *const *props, sio_err *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        sio_err_set(err, SIO_E_NOMEM, "kafka: out of memory");
        return NULL;
    }
    if (sio_kafka_set(conf, "bootstrap.servers", brokers, err) != 0) goto fail;
    for (const char *const *p = props; p && p[0]; p += 2) {
        if (p[1] == NULL) {
            sio_err_set(err, SIO_E_CONFIG, "kafka property %s has no value", p[0]);
            goto fail;
        }
        if (sio_kafka_set(conf, p[0], p[1], err) != 0) goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int sio_kafka_check(rd_kafka_t *rk, const char *brokers, int timeout_ms, sio_err *err) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "kafka brokers %s did not answer within %d ms (%s)",
                           brokers, timeout_ms, rd_kafka_err2str(e));
    int n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    if (n == 0)
        return sio_err_set(err, SIO_E_KAFKA, "kafka brokers %s answered with no brokers", brokers);
    return 0;
}

/* Collects the CreateTopics results: TOPIC_ALREADY_EXISTS is fine. */
static int create_results(rd_kafka_event_t *ev, int *created, sio_err *err) {
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return sio_err_set(err, SIO_E_KAFKA, "creating topics: %s",
                           rd_kafka_event_error_string(ev));
    size_t n;
    const rd_kafka_topic_result_t **tr =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (created) (*created)++;
        } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            sio_code code = e == RD_KAFKA_RESP_ERR__TIMED_OUT ? SIO_E_KAFKA : SIO_E_CONFIG;
            return sio_err_set(err, code, "creating topic %s: %s",
                               rd_kafka_topic_result_name(tr[i]),
                               rd_kafka_topic_result_error_string(tr[i]));
        }
    }
    return 0;
}

int sio_kafka_ensure_topics(rd_kafka_t *rk, const char *const *topics, size_t n, int partitions,
                            int replication, int timeout_ms, int *created, sio_err *err) {
    char errstr[512];
    rd_kafka_NewTopic_t *nt[16];
    if (created) *created = 0;
    if (n > sizeof nt / sizeof nt[0]) return sio_err_set(err, SIO_E_INVAL, "too many topics");
    size_t made = 0;
    int rc = -1;
    for (; made < n; made++) {
        nt[made] = rd_kafka_NewTopic_new(topics[made], partitions, replication, errstr,
                                         sizeof errstr);
        if (nt[made] == NULL) {
            sio_err_set(err, SIO_E_CONFIG, "topic %s: %s", topics[made], errstr);
            goto out;
        }
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, nt, n, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (ev == NULL) {
        sio_err_set(err, SIO_E_KAFKA, "creating topics: no answer within %d ms", timeout_ms);
    } else {
        rc = create_results(ev, created, err);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
out:
    for (size_t i = 0; i < made; i++) rd_kafka_NewTopic_destroy(nt[i]);
    return rc;
}

char *sio_dlq_topic(const char *reply_topic, char *buf, size_t n) {
    size_t len = strlen(reply_topic);
    if (len >= 4 && strcmp(reply_topic + len - 4, ".dlq") == 0)
        snprintf(buf, n, "%s", reply_topic);
    else
        snprintf(buf, n, "%s.dlq", reply_topic);
    return buf;
}

int sio_kafka_err_permanent(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:       /* local (message.max.bytes) or broker */
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:          /* invalid topic */
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:           /* after topic.metadata.propagation.max.ms */
        return 1;
    default:
        return 0;
    }
}

sio_code sio_kafka_produce_code(rd_kafka_resp_err_t e) {
    return sio_kafka_err_permanent(e) ? SIO_E_KAFKA_REJECTED : SIO_E_KAFKA;
}

/* Looks for name among the entries of a DescribeConfigs result. */
static int find_config(rd_kafka_event_t *ev, const char *topic, const char *name,
                       char *out, size_t n, sio_err *err) {
    const rd_kafka_DescribeConfigs_result_t *r = rd_kafka_event_DescribeConfigs_result(ev);
    size_t nres = 0, nc = 0;
    const rd_kafka_ConfigResource_t **res =
        r ? rd_kafka_DescribeConfigs_result_resources(r, &nres) : NULL;
    if (rd_kafka_event_error(ev) || nres != 1 || rd_kafka_ConfigResource_error(res[0]))
        return sio_err_set(err, SIO_E_KAFKA, "describing topic %s: %s", topic,
                           rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                           : nres == 1 ? rd_kafka_ConfigResource_error_string(res[0])
                                       : "no answer");
    const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(res[0], &nc);
    for (size_t k = 0; k < nc; k++) {
        const char *v = rd_kafka_ConfigEntry_value(ce[k]);
        if (strcmp(rd_kafka_ConfigEntry_name(ce[k]), name) == 0 && v) {
            snprintf(out, n, "%s", v);
            return 0;
        }
    }
    return sio_err_set(err, SIO_E_NOTFOUND, "topic %s: no %s", topic, name);
}

int sio_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *out,
                           size_t n, int timeout_ms, sio_err *err) {
    char errstr[256];
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof errstr);
    rd_kafka_DescribeConfigs(rk, &res, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    int rc = ev ? find_config(ev, topic, name, out, n, err)
                : sio_err_set(err, SIO_E_KAFKA, "describing topic %s: no answer within %d ms",
                              topic, timeout_ms);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

int sio_kafka_topic_max_bytes(rd_kafka_t *rk, const char *topic, int timeout_ms, size_t *out,
                              sio_err *err) {
    char v[32];
    if (sio_kafka_topic_config(rk, topic, "max.message.bytes", v, sizeof v, timeout_ms, err) != 0)
        return -1;
    long long n = atoll(v);
    if (n <= 0)
        return sio_err_set(err, SIO_E_KAFKA, "topic %s: max.message.bytes is \"%s\"", topic, v);
    *out = (size_t)n;
    return 0;
}

int sio_kafka_set_bytes(json_t *obj, const char *name, const void *bytes, size_t len) {
    json_t *v = len == 0 ? json_string("") : memchr(bytes, 0, len) ? NULL : json_stringn(bytes, len);
    if (v != NULL) return json_object_set_new(obj, name, v);
    char *b = sio_base64_encode(bytes, len), key[128];
    snprintf(key, sizeof key, "%s_base64", name);
    int rc = b ? json_object_set_new(obj, key, json_string(b)) : -1;
    free(b);
    return rc;
}

json_t *sio_kafka_headers_json(const rd_kafka_headers_t *h) {
    json_t *arr = json_array();
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0; arr && h && rd_kafka_header_get_all(h, i, &name, &val, &size) == 0; i++) {
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(arr, o) != 0 ||
            sio_kafka_set_bytes(o, "key", name, strlen(name)) != 0 ||
            (val ? sio_kafka_set_bytes(o, "value", val, size)
                 : json_object_set_new(o, "value", json_null())) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The bytes of o's member name (a string) or name_base64 (decoded), in
 * *buf (malloc'd when decoded) and *len.  1 when found, 0 when o has
 * neither or name is null, -1 when malformed. */
static int get_bytes(const json_t *o, const char *name, const char *name_b64, const char **p,
                     size_t *len, unsigned char **buf) {
    const json_t *s = json_object_get(o, name), *b = json_object_get(o, name_b64);
    *buf = NULL;
    if (s && b) return -1;
    if (json_is_string(s)) {
        *p = json_string_value(s), *len = json_string_length(s);
        return 1;
    }
    if (json_is_string(b)) {
        *buf = sio_base64_decode(json_string_value(b), json_string_length(b), len);
        *p = (const char *)*buf;
        return *buf ? 1 : -1;
    }
    return (s == NULL && b == NULL) || json_is_null(s) ? 0 : -1;
}

int sio_kafka_headers_from_json(const json_t *arr, rd_kafka_headers_t **out, sio_err *err) {
    *out = NULL;
    if (!json_is_array(arr)) return sio_err_set(err, SIO_E_INVAL, "headers: not an array");
    size_t n = json_array_size(arr);
    rd_kafka_headers_t *h = n ? rd_kafka_headers_new(n) : NULL;
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *k = NULL, *v = NULL;
        size_t klen = 0, vlen = 0;
        unsigned char *kbuf = NULL, *vbuf = NULL;
        int hk = json_is_object(o) ? get_bytes(o, "key", "key_base64", &k, &klen, &kbuf) : -1;
        int hv = hk == 1 ? get_bytes(o, "value", "value_base64", &v, &vlen, &vbuf) : -1;
        int ok = hk == 1 && hv >= 0 && memchr(k, 0, klen) == NULL; /* names are C strings */
        if (ok) rd_kafka_header_add(h, k, (ssize_t)klen, hv ? v : NULL, hv ? (ssize_t)vlen : 0);
        free(kbuf);
        free(vbuf);
        if (!ok) {
            rd_kafka_headers_destroy(h);
            return sio_err_set(err, SIO_E_INVAL,
                               "headers[%zu]: not {\"key\", \"value\" | \"value_base64\"}", i);
        }
    }
    *out = h;
    return 0;
}

/*
 * group_members.c - `sio_group_members BROKERS GROUP`: the members of a
 * consumer group as the group coordinator sees them, for the chaos tests.
 * Prints one JSON line per member, {"client_id", "member_id", "host",
 * "partitions": [..]} (the partitions of its current assignment), then
 * {"group", "state", "members"}.  Exit 1 when the group cannot be
 * described (the coordinator is not there yet).
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

static void print(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) puts(s);
    free(s);
    json_decref(o);
}

/* The members of one group description; returns 0, or 1 on its error. */
static int describe(const rd_kafka_ConsumerGroupDescription_t *d) {
    const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error(d);
    if (e) {
        fprintf(stderr, "group_members: %s\n", rd_kafka_error_string(e));
        return 1;
    }
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const rd_kafka_topic_partition_list_t *l =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        json_t *parts = json_array();
        for (int p = 0; l && p < l->cnt; p++) json_array_append_new(parts, json_integer(l->elems[p].partition));
        print(json_pack("{s:s,s:s,s:s,s:o}", "client_id", rd_kafka_MemberDescription_client_id(m),
                        "member_id", rd_kafka_MemberDescription_consumer_id(m), "host",
                        rd_kafka_MemberDescription_host(m), "partitions", parts));
    }
    print(json_pack("{s:s,s:s,s:i}", "group", rd_kafka_ConsumerGroupDescription_group_id(d), "state",
                    rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d)),
                    "members", (int)n));
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sio_group_members BROKERS GROUP\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "group_members: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "group_members: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const char *groups[] = {argv[2]};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 1;
    if (ev == NULL) {
        fprintf(stderr, "group_members: no answer within 30 s\n");
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "group_members: %s\n", rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
        rc = n == 1 ? describe(d[0]) : 1;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

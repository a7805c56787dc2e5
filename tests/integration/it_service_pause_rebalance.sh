#!/usr/bin/env bash
# A partition the service paused (its workers full) and then lost in a
# rebalance is fetched again when it comes back, under both rebalance
# protocols.  librdkafka keeps an application's pause on a partition
# through an unassign, so unless the revoke resumes what it takes away, a
# member would get the partition back still paused and never read it
# again.  The state is made, not hoped for: member a (one worker,
# one command in flight) holds gated commands until it pauses; b joins and
# takes one partition; the gate opens, a resumes what it still owns; b
# stops, a gets the partition back, and commands sent to it must finish.
source "$(dirname "$0")/lib.sh"
export TOPIC_PARTITIONS=2 WORKER_COUNT=1 WORKER_INFLIGHT=1

# assigned_now NAME N: until NAME's last assignment change leaves it N partitions.
assigned_now() {
    for _ in $(seq 1 600); do
        [ "$(grep -E '"partitions (assigned|revoked)"' "$RUN/$1.err" | tail -1 | jq '.assigned_now')" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1 does not hold $2 partitions: $(grep -E '"partitions (assigned|revoked)"' "$RUN/$1.err" | tail -3)"
}

# logged NAME MSG: until NAME has logged MSG.
logged() {
    for _ in $(seq 1 600); do
        grep -q "\"msg\":\"$2\"" "$RUN/$1.err" && return 0
        sleep 0.1
    done
    fail "$1 never logged \"$2\""
}

round() {
    local name=$1 proto=$2
    export KAFKA_COMMANDS_TOPIC="it.$uniq.$name.commands" KAFKA_RESPONSES_TOPIC="it.$uniq.$name.responses"
    export KAFKA_GROUP_ID="it.$uniq.$name"
    RESPONSES=$KAFKA_RESPONSES_TOPIC DLQ=$KAFKA_RESPONSES_TOPIC.dlq
    # The follower (lib.sh) reads the topics of one round: a new one each.
    if [ -e "$RUN/follow.pid" ]; then
        kill "$(cat "$RUN/follow.pid")" 2>/dev/null || true
        rm -f "$RUN/follow.pid"
    fi
    export KAFKA_ASSIGNMENT_STRATEGY=$proto
    SERVE_ARGS="-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000"
    local gate="p$$-$name"
    for i in $(seq 1 40); do
        echo '{"correlation_id":"'"$gate-$i"'","workflow":"gated","attrs":{"id":"'"$gate-$i"'","gate":"'"$gate"'","poll_ms":50}}'
    done >"$RUN/$name.jsonl"
    head -n 20 "$RUN/$name.jsonl" >"$RUN/$name.first.jsonl"
    tail -n 20 "$RUN/$name.jsonl" >"$RUN/$name.rest.jsonl"

    start_service "a-$name"
    assigned_now "a-$name" 2
    "$BIN" send --lines "$RUN/$name.first.jsonl" >/dev/null
    logged "a-$name" "intake paused: the workers stayed full"
    start_service "b-$name"
    assigned_now "b-$name" 1
    assigned_now "a-$name" 1
    redis SET "wf:gated:gate:$gate" 1 >/dev/null
    logged "a-$name" "intake resumed"
    wait_count "$RESPONSES" 20 '.value.status == "success"'
    stop_service "b-$name"
    assigned_now "a-$name" 2
    "$BIN" send --lines "$RUN/$name.rest.jsonl" >/dev/null
    wait_count "$RESPONSES" 40 '.value.status == "success"'
    local ok
    ok=$(messages "$RESPONSES" | jq -r 'select(.value.status == "success") | .key' | sort -u | wc -l)
    [ "$ok" = 40 ] || fail "$name: $ok of 40 commands succeeded"
    wait_committed
    stop_service "a-$name"
    pass "$name ($proto): a partition paused, lost and assigned again is read again (40 of 40 succeeded, offsets committed)"
}

round eager range,roundrobin
round cooperative cooperative-sticky
finish

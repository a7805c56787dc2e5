#!/usr/bin/env bash
# kill -9 with 1,900 of 2,000 commands in flight, then a restart: every
# command gets a final outcome, and the per-command execution counter the
# workflow keeps in Redis shows that the 100 done before the crash ran once
# and the 1,900 in flight ran exactly twice (once before the crash, once
# after their 3 s lease expired).  The commands in flight are held at the
# test server's gate, so the crash point is exact on any machine.
source "$(dirname "$0")/lib.sh"
export TOPIC_PARTITIONS=6 DEDUPE_LEASE=3s WORKER_INFLIGHT=500 DRAIN_TIMEOUT=30s
# The killed member leaves the group only when its session times out.
SERVE_ARGS="-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000"
N=2000 DONE=100
gate_start
for i in $(seq 1 $N); do
    echo '{"correlation_id":"c'$$'-'$i'","workflow":"counted","attrs":{"id":"c'$$'-'$i'","gate":"'"$GATE"'"}}'
done >"$RUN/cmds.jsonl"

start_service a
"$BIN" send --lines "$RUN/cmds.jsonl" >/dev/null
gate release?n=$DONE >/dev/null
wait_count "$RESPONSES" $DONE '.value.status == "success"'
gate_wait held $((N - DONE))           # all the others are in flight, inside their workflow
kill9_service a
messages "$RESPONSES" | jq -r 'select(.value.status == "success") | .key' | sort -u >"$RUN/before.txt"
before=$(wc -l <"$RUN/before.txt")
[ "$before" = $DONE ] || fail "crash point: $before of $N were done, want $DONE"
echo "# killed with $before of $N done, $((N - DONE)) in flight"

gate open >/dev/null
start_service b
wait_count "$RESPONSES" $N '.value.status == "success"'
stop_service b
messages "$RESPONSES" | jq -r 'select(.value.status == "success") | .key' | sort -u >"$RUN/after.txt"
[ "$(wc -l <"$RUN/after.txt")" = $N ] || fail "$(wc -l <"$RUN/after.txt") of $N commands have a success"
messages "$DLQ" | jq -e -s 'length == 0' >/dev/null || fail "dead-lettered: $(messages "$DLQ" | head -3)"
pass "every one of $N commands has its final outcome after kill -9 and a restart"

# Execution counters: once for what was done before the crash, twice for
# what was in flight (its lease expired after the crash).
for i in $(seq 1 $N); do echo "GET wf:counted:runs:c$$-$i"; done | redis >"$RUN/runs.txt"
paste -d' ' <(seq 1 $N | sed "s/^/c$$-/") "$RUN/runs.txt" | sort >"$RUN/counts.txt"
join "$RUN/before.txt" "$RUN/counts.txt" | awk '$2 != 1' | head -3 | grep . \
    && fail "done before the crash, yet ran again (above)"
join -v 2 "$RUN/before.txt" "$RUN/counts.txt" | awk '$2 != 2' | head -3 | grep . \
    && fail "in flight at the crash, but did not run exactly twice (above)"
pass "the $DONE commands done before the crash ran once; the $((N - DONE)) in flight ran again once their 3 s lease expired"
wait_committed
pass "all offsets committed after the restart"
finish

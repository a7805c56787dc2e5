#!/usr/bin/env bash
# Two instances in one group on a 6-partition topic share the load; one is
# stopped (SIGTERM) mid-stream and nothing is lost or run twice: it drains
# what it started and the other takes over its partitions.  "Mid-stream"
# is made, not hoped for: every command waits at the test server's gate, so
# when b is stopped both instances are full of commands in flight and most
# of the stream has not started.
source "$(dirname "$0")/lib.sh"
export TOPIC_PARTITIONS=6 WORKER_INFLIGHT=16
N=1200 FIRST=200 FULL=$((2 * 4 * 16))   # two instances x 4 workers x 16 in flight
gate_start
for i in $(seq 1 $N); do
    echo '{"correlation_id":"g'$$'-'$i'","workflow":"counted","attrs":{"id":"g'$$'-'$i'","gate":"'"$GATE"'"}}'
done >"$RUN/cmds.jsonl"

start_service a
start_service b
# Both members hold partitions before the load starts.
for _ in $(seq 1 1500); do
    [ "$(grep -c '"partitions assigned"' "$RUN/a.err")" -ge 1 ] && \
        ! grep -q '"count":6' <(grep '"partitions assigned"' "$RUN/b.err" | tail -1) && \
        ! grep -q '"count":6' <(grep '"partitions assigned"' "$RUN/a.err" | tail -1) && break
    sleep 0.2
done
"$BIN" send --lines "$RUN/cmds.jsonl" >/dev/null
gate release?n=$FIRST >/dev/null
wait_count "$RESPONSES" $FIRST '.value.status == "success"'
gate_wait held $FULL                   # both instances are full, waiting at the gate
kill -TERM "$(cat "$RUN/b.pid")"
wait_log b '"draining"'
inflight=$(grep '"draining"' "$RUN/b.err" | jq '.inflight')
[ "$inflight" -gt 0 ] || fail "b had nothing in flight when it was stopped"
at_stop=$(messages "$RESPONSES" | jq -c 'select(.value.status == "success")' | wc -l)
[ "$at_stop" = $FIRST ] || fail "b was stopped with $at_stop of $N done, want $FIRST"
echo "# b stopped with $at_stop of $N done and $inflight of its own in flight"
gate open >/dev/null
stop_service b                          # drains its own and exits 0
wait_count "$RESPONSES" $N '.value.status == "success"'
stop_service a

da=$(grep '"msg":"stopped"' "$RUN/a.err" | jq '.dispatched')
db=$(grep '"msg":"stopped"' "$RUN/b.err" | jq '.dispatched')
[ "$da" -gt 0 ] && [ "$db" -gt 0 ] || fail "load not shared: a dispatched $da, b $db"
pass "both instances processed commands (a: $da, b: $db)"

ok=$(messages "$RESPONSES" | jq -r 'select(.value.status == "success") | .key' | sort -u | wc -l)
[ "$ok" = $N ] || fail "$ok of $N commands succeeded"
for i in $(seq 1 $N); do echo "GET wf:counted:runs:g$$-$i"; done | redis | sort | uniq -c >"$RUN/runs.txt"
[ "$(awk '{print $2}' "$RUN/runs.txt" | tr -d '\n')" = 1 ] || fail "execution counts: $(cat "$RUN/runs.txt")"
pass "stopping one instance mid-stream lost nothing and ran nothing twice ($N commands, each once)"
wait_committed
pass "all offsets committed"
finish

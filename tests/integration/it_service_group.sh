#!/usr/bin/env bash
# Two instances in one group on a 6-partition topic share the load; one is
# stopped (SIGTERM) mid-stream and nothing is lost or run twice: it drains
# what it started and the other takes over its partitions.  "Mid-stream" is
# made, not hoped for: the first 200 commands are sent and answered, the
# other 1,000 wait on gate g2 (polling kv), which opens only once the stop
# is under way.
source "$(dirname "$0")/lib.sh"
export TOPIC_PARTITIONS=6 WORKER_INFLIGHT=16
N=1200
for i in $(seq 1 $N); do
    gate=g1-$$
    [ "$i" -gt 200 ] && gate=g2-$$
    echo '{"correlation_id":"g'$$'-'$i'","workflow":"gated","attrs":{"id":"g'$$'-'$i'","gate":"'$gate'","poll_ms":100}}'
done >"$RUN/cmds.jsonl"
head -n 200 "$RUN/cmds.jsonl" >"$RUN/first.jsonl"
tail -n +201 "$RUN/cmds.jsonl" >"$RUN/rest.jsonl"

start_service a
start_service b
# Both members hold partitions before the load starts.
for _ in $(seq 1 100); do
    [ "$(grep -c '"partitions assigned"' "$RUN/a.err")" -ge 1 ] && \
        ! grep -q '"count":6' <(grep '"partitions assigned"' "$RUN/b.err" | tail -1) && \
        ! grep -q '"count":6' <(grep '"partitions assigned"' "$RUN/a.err" | tail -1) && break
    sleep 0.2
done
redis SET "wf:gated:gate:g1-$$" 1 >/dev/null
"$BIN" send --lines "$RUN/first.jsonl" >/dev/null
wait_count "$RESPONSES" 200 '.value.status == "success"'
"$BIN" send --lines "$RUN/rest.jsonl" >/dev/null
# Both members have commands of the rest waiting on g2.
for _ in $(seq 1 600); do
    grep -q '"partitions' "$RUN/b.err" && \
        [ "$(redis --scan --pattern "wf:gated:waiting:g$$-*" | wc -l)" -ge 300 ] && break
    sleep 0.1
done
bpid=$(cat "$RUN/b.pid")
kill -TERM "$bpid"
at_stop=$("$BIN" tail --from-beginning --idle 1s "$RESPONSES" | jq -r 'select(.value.status == "success") | .key' | sort -u | wc -l)
[ "$at_stop" -lt $N ] || fail "b was stopped after everything was done ($at_stop of $N): not mid-stream"
echo "# b stopping with $at_stop of $N done"
redis SET "wf:gated:gate:g2-$$" 1 >/dev/null
rc=0
wait "$bpid" || rc=$?
rm -f "$RUN/b.pid"
[ $rc -eq 0 ] || fail "b exited with $rc after SIGTERM"
wait_count "$RESPONSES" $N '.value.status == "success"'
stop_service a

da=$(grep '"msg":"stopped"' "$RUN/a.err" | jq '.dispatched')
db=$(grep '"msg":"stopped"' "$RUN/b.err" | jq '.dispatched')
[ "$da" -gt 0 ] && [ "$db" -gt 0 ] || fail "load not shared: a dispatched $da, b $db"
pass "both instances processed commands (a: $da, b: $db)"

ok=$(messages "$RESPONSES" | jq -r 'select(.value.status == "success") | .key' | sort -u | wc -l)
[ "$ok" = $N ] || fail "$ok of $N commands succeeded"
for i in $(seq 1 $N); do echo "GET wf:gated:runs:g$$-$i"; done | redis | sort | uniq -c >"$RUN/runs.txt"
[ "$(awk '{print $2}' "$RUN/runs.txt" | tr -d '\n')" = 1 ] || fail "execution counts: $(cat "$RUN/runs.txt")"
pass "stopping one instance mid-stream lost nothing and ran nothing twice ($N commands, each once)"
wait_committed
pass "all offsets committed"
finish

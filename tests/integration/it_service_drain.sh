#!/usr/bin/env bash
# SIGTERM with a worker wedged in C: a native tool (the test build's
# `wedge`) blocks its worker thread on a request the test server holds and
# never answers.  The service must still exit after DRAIN_TIMEOUT, non-zero,
# without committing that command - and a new instance gets it again.
source "$(dirname "$0")/lib.sh"
export WORKFLOWS_DIR="$TOP/tests/integration/workflows-native" DRAIN_TIMEOUT=3s DEDUPE_LEASE=3s
SERVE_BIN=$TOOLS
gate_start

start_service a
"$BIN" send --raw '{"correlation_id":"w-'$$'","workflow":"wedge","attrs":{"gate":"'"$GATE"'","id":"w"}}' >/dev/null
gate_wait held 1                       # the worker is now blocked in C
pid=$(cat "$RUN/a.pid")
t0=$(date +%s%N)
kill -TERM "$pid"
for _ in $(seq 1 1200); do             # 120 s: far past any shutdown, fix or not
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "still running 120 s after SIGTERM (DRAIN_TIMEOUT=3s)"
t1=$(date +%s%N)
rc=0
wait "$pid" || rc=$?
rm -f "$RUN/a.pid"
elapsed_ms=$(( (t1 - t0) / 1000000 ))
[ "$rc" = 1 ] || fail "exit status $rc after abandoning a command, want 1"
[ "$elapsed_ms" -ge 3000 ] || fail "exited after $elapsed_ms ms, before DRAIN_TIMEOUT"
[ "$elapsed_ms" -le 63000 ] || fail "exited $elapsed_ms ms after SIGTERM, want DRAIN_TIMEOUT + at most 60 s"
grep -q '"drain timeout: abandoning in-flight commands' "$RUN/a.err" || fail "the abandoned command was not logged"
grep -q '"worker did not stop: exiting without it"' "$RUN/a.err" || fail "the wedged worker was not logged"
echo "# exited with $rc, $elapsed_ms ms after SIGTERM"
pass "SIGTERM with a worker wedged in C: exit status $rc after DRAIN_TIMEOUT, whatever the worker does"

[ "$(messages "$RESPONSES" | jq -s 'map(select(.key == "w-'$$'")) | length')" = 0 ] \
    || fail "the wedged command has a response before it was run again"
start_service b
gate_wait received 2                   # delivered again: its tool called the gate again
gate open >/dev/null
wait_count "$RESPONSES" 1 '.key == "w-'$$'" and .value.status == "success"'
stop_service b
messages "$DLQ" | jq -e -s 'all(.key != "w-'$$'")' >/dev/null || fail "the command was dead-lettered"
wait_committed
pass "the uncommitted command was redelivered to the next instance and succeeded there"
finish

#!/usr/bin/env bash
# Resource ceilings (issue 13 item 4).  10,000 commands whose workflows each
# hold 1 MiB for 1 s: the service's peak RSS (VmHWM, so not a matter of
# speed) stays under the bound README "Memory" derives - its RSS at rest,
# plus WORKER_COUNT x WORKER_INFLIGHT x SIO_MEM_LIMIT, plus librdkafka's
# queues as the service sets them.  Among them, 5 commands try to hold four
# times their memory limit: each is dead-lettered for it, and every other
# command succeeds - one command over its limit never affects another.
# Runs the binary without sanitizers when the build has one (ASan's shadow
# memory would swamp the measure).
source "$(dirname "$0")/lib.sh"
BIN=${SIO_BIN_PLAIN:-$BIN}
export WORKER_COUNT=4 WORKER_INFLIGHT=32 SIO_MEM_LIMIT=4m TOPIC_PARTITIONS=6
# librdkafka's queues as the settings size them (not their defaults, so
# the memory ceiling line shows they reach the clients)
export KAFKA_PREFETCH_BYTES=2m KAFKA_PRODUCER_QUEUE_BYTES=16m
MIB=1048576
N=10000
BIG="1 2501 5002 7503 9999"
for i in $(seq 1 $N); do
    bytes=$MIB
    case " $BIG " in *" $i "*) bytes=$((16 * MIB)) ;; esac
    echo '{"correlation_id":"m'$$'-'$i'","workflow":"hold","attrs":{"bytes":'$bytes',"ms":1000}}'
done >"$RUN/cmds.jsonl"

start_service a
pid=$(cat "$RUN/a.pid")
status() { awk -v k="$1:" '$1 == k {printf "%d\n", $2 * 1024}' "/proc/$pid/status"; }
rest=$(status VmHWM)
"$BIN" send --lines "$RUN/cmds.jsonl" >/dev/null
# Every command finished: its offset is committed (outcomes are checked below).
for _ in $(seq 1 1200); do
    [ "$(committed_lag)" = 0 ] && break
    sleep 1
done
[ "$(committed_lag)" = 0 ] || fail "not all commands finished: $("$BIN" offsets | tail -1)"
peak=$(status VmHWM)
stop_service a

# The bound: the process at rest plus the ceiling the service states at
# start - every command at its limit, librdkafka's queues (consumer
# prefetch and one fetch response, producer queue) as it set them.
ceiling=$(grep '"msg":"memory ceiling"' "$RUN/a.err" | head -1)
lua=$(jq '.commands_lua_bytes' <<<"$ceiling")
[ "$lua" = $((WORKER_COUNT * WORKER_INFLIGHT * 4 * MIB)) ] || fail "memory ceiling: $ceiling"
[ "$(jq -c '[.consumer_queue_bytes, .producer_queue_bytes]' <<<"$ceiling")" = "[$((2 * MIB)),$((16 * MIB))]" ] ||
    fail "librdkafka's queues are not as KAFKA_PREFETCH_BYTES / KAFKA_PRODUCER_QUEUE_BYTES set them: $ceiling"
queues=$(jq '.total_bytes - .commands_lua_bytes' <<<"$ceiling")
bound=$((rest + lua + queues))
echo "# peak RSS $((peak / MIB)) MiB; bound $((bound / MIB)) MiB = at rest $((rest / MIB)) + workers $((lua / MIB)) + librdkafka queues $((queues / MIB))"
[ "$peak" -lt "$bound" ] || fail "peak RSS $peak bytes is over the bound $bound"
pass "peak RSS $((peak / MIB)) MiB stays under the documented bound of $((bound / MIB)) MiB with $N commands holding 1 MiB each"

messages "$RESPONSES" | jq -c 'select(.value.status == "success") | [.key, (.value.result.outputs.hold | fromjson | .held)]' | sort -u >"$RUN/ok.txt"
[ "$(wc -l <"$RUN/ok.txt")" = $((N - 5)) ] || fail "$(wc -l <"$RUN/ok.txt") successes, want $((N - 5))"
[ "$(jq -s "map(select(.[1] == $MIB)) | length" "$RUN/ok.txt")" = $((N - 5)) ] || fail "a success did not hold 1 MiB: $(jq -c "select(.[1] != $MIB)" "$RUN/ok.txt" | head -3)"
messages "$DLQ" | jq -r '.key' | sort >"$RUN/dlq.txt"
for i in $BIG; do echo "m$$-$i"; done | sort >"$RUN/big.txt"
diff "$RUN/big.txt" "$RUN/dlq.txt" >/dev/null || fail "dead-lettered: $(tr '\n' ' ' <"$RUN/dlq.txt"), want the 5 over their limit"
messages "$DLQ" | jq -e -s 'all(.value.error_class == "permanent" and (.value.error | test("memory limit")))' >/dev/null ||
    fail "DLQ entries: $(messages "$DLQ" | jq -c '.value | [.error_class, .error]' | head -3)"
pass "the 5 commands over their memory limit were dead-lettered for it; the other $((N - 5)) all succeeded"
finish

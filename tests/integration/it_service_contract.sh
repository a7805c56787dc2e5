#!/usr/bin/env bash
# The seed's contract against the real broker and Redis: the sample flow,
# a reply_topic override, every permanent-error kind dead-lettered with the
# original payload, duplicates answered from the stored response, and the
# commands topic fully committed afterwards.
source "$(dirname "$0")/lib.sh"
gate_start
start_service a

# 1. The seed's sample flow: step_result for s1, then success.
out=$(send abc-$$ noop '{"query":"hello"}')
echo "$out" | jq -e -s 'length == 2' >/dev/null || fail "sample flow printed: $out"
echo "$out" | jq -e -s '.[0].value.status == "step_result" and .[0].value.result.step_id == "s1"
    and .[0].value.result.query == "hello" and (.[0].value.result.payload | fromjson | .query) == "hello"
    and .[1].value.status == "success" and (.[1].value.result.summary | type) == "string"
    and .[0].topic == env.KAFKA_RESPONSES_TOPIC and .[1].topic == env.KAFKA_RESPONSES_TOPIC
    and .[0].key == .[1].key and .[0].value.correlation_id == "abc-'$$'"' >/dev/null \
    || fail "sample flow envelopes: $out"
[[ "$(redis GET "${DEDUPE_KEY_PREFIX}abc-$$")" == done:* ]] || fail "no stored response in Redis"
ttl=$(redis PTTL "${DEDUPE_KEY_PREFIX}abc-$$")
[ "$ttl" -gt 590000 ] && [ "$ttl" -le 600000 ] || fail "stored response TTL $ttl ms, want ~10m"
pass "sample flow: step_result then success on $RESPONSES; response stored in Redis with the 10m TTL"

# 2. reply_topic override.
other="it.$uniq.other"
out=$(send rt-$$ noop '{"query":"elsewhere"}' --reply-topic "$other")
echo "$out" | jq -e -s 'length == 2 and all(.topic == "'"$other"'") and .[1].value.status == "success"' \
    >/dev/null || fail "reply_topic: $out"
pass "reply_topic: responses go to $other"

# 3. Permanent errors: each to the DLQ at once, with the original payload.
"$BIN" send --raw 'this is {not json' >/dev/null
"$BIN" send --raw '{"workflow":"noop","attrs":{"query":"no id"}}' >/dev/null
"$BIN" send --raw '{"correlation_id":"nowf-'$$'","attrs":{}}' >/dev/null
send unknown-$$ nope '{}' >/dev/null && fail "unknown workflow succeeded"
send script-$$ broken '{"query":"x"}' >/dev/null && fail "script error succeeded"
send escape-$$ escape '{}' >/dev/null && fail "sandbox violation succeeded"
wait_count "$DLQ" 6 '.value.status == "error"'
dlq=$(messages "$DLQ")
check() { echo "$dlq" | jq -e -s "$1" >/dev/null || fail "$2: $(echo "$dlq" | jq -c '.value | {error, error_class, correlation_id}')"; }
check 'any(.value.command_base64 == ("this is {not json" | @base64) and (.value.error | startswith("malformed JSON")))' "malformed JSON"
check 'any(.value.error == "missing correlation_id" and .value.command.attrs.query == "no id")' "missing correlation_id"
check 'any(.value.error == "missing workflow" and .value.correlation_id == "nowf-'$$'")' "missing workflow"
check 'any(.value.error == "unknown workflow '"'nope'"' (did you mean noop?)" and .value.command.workflow == "nope")' "unknown workflow, with the closest loaded name"
check 'any(.value.correlation_id == "script-'$$'" and (.value.error | contains("boom: x")))' "script error"
check 'any(.value.correlation_id == "escape-'$$'" and (.value.error | contains("execute")) and (.value.error | contains("escape.yaml:")))' "sandbox violation"
check 'all(.value.error_class == "permanent" and .value.attempts == 1 and .value.source.topic == env.KAFKA_COMMANDS_TOPIC
    and (.value.source.offset | type) == "number" and (.value.received_at | type) == "string")' "DLQ envelope fields"
[ -e /tmp/sio-escaped ] && fail "the sandbox escape ran os.execute"
pass "permanent errors (malformed, no id, no workflow, unknown workflow, script error, sandbox) dead-lettered at once with the original command"

# 4. Duplicates: after success, the stored response comes back and the
# workflow does not run again; five copies at once run once.
send dup-$$ counted '{"id":"dup-'$$'"}' >/dev/null
out=$(send dup-$$ counted '{"id":"dup-'$$'"}')
echo "$out" | jq -e -s 'length == 1 and .[0].value.status == "success"' >/dev/null || fail "duplicate: $out"
[ "$(kv_get counted "runs:dup-$$")" = 1 ] || fail "duplicate ran again: runs=$(kv_get counted "runs:dup-$$")"
pass "a duplicate after success gets the stored response; the workflow ran once"

# The first copy is held inside its workflow at the test server's gate
# until the other four have found it in flight and wait for it.
for i in 1 2 3 4 5; do
    echo '{"correlation_id":"five-'$$'","workflow":"counted","attrs":{"id":"five-'$$'","gate":"'"$GATE"'"}}'
done >"$RUN/five.jsonl"
"$BIN" send --lines "$RUN/five.jsonl" >/dev/null
gate_wait held 1
wait_log a '"duplicate of a command in flight: waiting for it"' 4
gate open >/dev/null
wait_count "$RESPONSES" 5 '.key == "five-'$$'" and .value.status == "success"'
[ "$(kv_get counted "runs:five-$$")" = 1 ] || fail "five copies ran $(kv_get counted "runs:five-$$") times"
[ "$(gate stats | jq .received)" = 1 ] || fail "the workflow reached the gate $(gate stats | jq .received) times"
n=$(messages "$RESPONSES" | jq -c 'select(.key == "five-'$$'" and .value.status == "success") | .value' | sort -u | wc -l)
[ "$n" = 1 ] || fail "the five copies got $n different success envelopes"
pass "five copies sent at once ran once; all five got the same stored response"

# 5. Every command's offset is committed.
wait_committed
stop_service a
pass "all offsets committed; SIGTERM exits 0"
finish

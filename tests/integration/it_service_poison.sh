#!/usr/bin/env bash
# One message must never stop a partition (issue 9 item 2): numbers JSON
# cannot hold, illegal reply topics and messages larger than the broker
# takes each end as an entry in the default DLQ with the reason (trimmed to
# fit, saying what was cut), the committed offset moves past them and the
# commands after them on the same partition are answered.  Also: the DLQ
# keeps the command as received (not the engine's changes) with its Kafka
# headers; "attrs":[1] is permanent; a command killed by a sandbox limit is
# dead-lettered and its offset completes.  One partition, so "after it"
# means the same partition.
export TOPIC_PARTITIONS=1
source "$(dirname "$0")/lib.sh"
start_service a SIO_INSTR_LIMIT=2000000

# 1. Numbers JSON cannot represent: malformed, permanent, raw bytes kept.
inf='{"correlation_id":"inf-'$$'","workflow":"noop","attrs":{"query":1e999}}'
nan='{"correlation_id":"nan-'$$'","workflow":"noop","attrs":{"query":NaN}}'
neg='{"correlation_id":-1e999,"workflow":"noop","attrs":{"query":"neg-'$$'"}}'
for raw in "$inf" "$nan" "$neg"; do "$BIN" send --raw "$raw" >/dev/null; done
send after-numbers-$$ noop '{"query":"after numbers"}' >/dev/null || fail "the command after the numbers was not answered"
for raw in "$inf" "$nan" "$neg"; do
    expect_raw "$raw" '(.error | startswith("malformed JSON")) and .error_class == "permanent" and .command == null' "unencodable number"
done
pass "1e999, NaN and -1e999: dead-lettered as malformed JSON with the raw bytes; the next command answered"

# 2. reply_topic that is not a legal topic: the default DLQ, with the reason.
long=$(printf 'r%.0s' $(seq 1 300))
i=0
for rt in "bad topic !" "$long" ".." "__consumer_offsets"; do
    i=$((i + 1))
    "$BIN" send --raw '{"correlation_id":"rt'$i'-'$$'","workflow":"noop","reply_topic":"'"$rt"'","attrs":{"query":"x"}}' >/dev/null
done
send after-topics-$$ noop '{"query":"after topics"}' >/dev/null || fail "the command after the bad reply topics was not answered"
expect rt1-$$ '(.error | test("reply_topic has a character")) and (.dead_letter.reason | test("reply_topic")) and .dead_letter.topic == "bad topic !.dlq"' "reply_topic with a space"
expect rt2-$$ '(.error | test("300 characters")) and (.dead_letter.reason | test("300 characters"))' "300-character reply_topic"
expect rt3-$$ '(.error | test("not a legal topic name")) and .dead_letter != null' "reply_topic .."
expect rt4-$$ '(.error | test("internal topic")) and .dead_letter.topic == "__consumer_offsets.dlq"' "reply_topic __consumer_offsets"
pass "illegal reply topics (space, 300 characters, .., __consumer_offsets): the default DLQ with the reason"

# 3. Larger than the broker takes: a step result over the limit, a DLQ
# entry over the limit (unknown workflow, ~999.5 KB of attrs) and raw bytes
# whose base64 is over it.  Sent as lines (too long for an argument).
big=$(head -c 600000 /dev/zero | tr '\0' 'a')
huge=$(head -c 999500 /dev/zero | tr '\0' 'b')
junk=$(head -c 800000 /dev/zero | tr '\0' 'c')
{
    echo '{"correlation_id":"bigstep-'$$'","workflow":"noop","attrs":{"query":"'"$big"'"}}'
    echo '{"correlation_id":"bigdlq-'$$'","workflow":"nope","attrs":{"query":"'"$huge"'"}}'
    echo "$junk"
} >"$RUN/big.jsonl"
"$BIN" send --lines "$RUN/big.jsonl" >/dev/null || fail "could not send the large commands"
send after-big-$$ noop '{"query":"after big"}' >/dev/null || fail "the command after the large ones was not answered"
expect bigstep-$$ '(.error | test("step result of s1 is [0-9]+ bytes, over")) and .error_class == "permanent"
    and (.command.attrs.query | length) == 600000 and .truncated == null' "step result over the limit"
expect bigdlq-$$ '(.error | test("unknown workflow")) and .truncated == ["command"] and .command == null
    and .correlation_id == "bigdlq-'$$'"' "DLQ entry over the limit"
messages "$DLQ" | jq -e -s 'any(.value.truncated == ["command_base64"] and (.value.error | startswith("malformed JSON")))' >/dev/null \
    || fail "raw bytes over the limit: no trimmed entry"
pass "a step result and DLQ entries over the broker's limit: the default DLQ, trimmed, saying what was cut"

# 4. The DLQ keeps the command as received, with its headers; attrs must be
# an object; a command killed by a sandbox limit is dead-lettered.
send keep-$$ broken '{"query":"as sent"}' --header traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 \
    --header bin=x >/dev/null && fail "broken succeeded"
expect keep-$$ '.command == {"correlation_id":"keep-'$$'","workflow":"broken","attrs":{"query":"as sent"}}
    and .headers == [{"key":"traceparent","value":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},{"key":"bin","value":"x"}]' \
    "command as received"
pass "the DLQ entry carries the command as received (no utter, no step output) and its headers"

"$BIN" send --raw '{"correlation_id":"arr-'$$'","workflow":"noop","attrs":[1]}' >/dev/null
send spin-$$ spin '{}' >/dev/null && fail "spin succeeded"
send after-all-$$ noop '{"query":"last"}' >/dev/null || fail "the last command was not answered"
expect arr-$$ '.error == "attrs must be a JSON object" and .error_class == "permanent"' "attrs [1]"
expect spin-$$ '.error == "instruction limit exceeded" and .error_class == "permanent" and .attempts == 1' "killed by a limit"
grep -q 'ended abnormally' "$RUN/a.err" && fail "a command was bounced to the consumer thread"
pass "attrs [1] is permanent; a command killed by the instruction limit is dead-lettered by its worker"

# 5. Nothing is stuck: every offset of the commands topic is committed.
wait_committed
strict_json "$RESPONSES" "$DLQ" >/dev/null
stop_service a
pass "the committed offset moved past every one of them; all it wrote is strict UTF-8 JSON; SIGTERM exits 0"
finish

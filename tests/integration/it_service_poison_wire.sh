#!/usr/bin/env bash
# Hostile inputs at the edges of the wire format (issue 13 item 2; the
# sibling it_service_poison.sh covers numbers JSON cannot hold, illegal
# reply topics, oversized results and DLQ entries, sandbox kills).  For
# each one: a DLQ entry with a clear error and the original bytes (the
# parsed command, or command_base64 when it is not JSON), or the default
# DLQ with the reason where the reply topic itself is unusable; the
# service alive; a normal command sent right after it on the same (only)
# partition answered; at the end every offset committed and every message
# on the responses topic and both DLQs strict UTF-8 JSON, read from the
# raw bytes by another parser than ours.
export TOPIC_PARTITIONS=1
source "$(dirname "$0")/lib.sh"
start_service a
CUSTOM="it.$uniq.custom" # a reply topic of its own, for the second DLQ

# answered NAME: the service is alive and a normal command after the
# poison NAME is answered.
answered() {
    kill -0 "$(cat "$RUN/a.pid")" 2>/dev/null || fail "the service died on $1"
    send "after-$1-$$" noop '{"query":"after"}' >/dev/null || fail "the command after $1 was not answered"
}
# lines NAME: send the bytes on stdin as one message value (send --lines:
# values too long for an argument, or holding NUL bytes).
lines() {
    cat >"$RUN/$1.bin"
    "$BIN" send --lines "$RUN/$1.bin" "${@:2}" >/dev/null || fail "could not send $1"
}

# 1. A 1 MB value (1,000,000 bytes), and one at the broker's maximum: the
# largest record batch it takes is message.max.bytes = 1048588 bytes, a
# one-record batch adds 72 bytes to the value and key, so a value of
# 1048588 - 72 - keylen bytes is the largest; one byte more is refused.
pad() { head -c "$1" /dev/zero | tr '\0' "$2"; }
mb_head='{"correlation_id":"mb-'$$'","workflow":"noop","attrs":{"query":"'
mb="$mb_head$(pad $((1000000 - ${#mb_head} - 3)) m)\"}}"
[ ${#mb} = 1000000 ] || fail "the 1 MB command is ${#mb} bytes"
printf '%s\n' "$mb" | lines mb -X message.max.bytes=2000000
answered mb
key="max-$$"
head='{"correlation_id":"'$key'","workflow":"nope","attrs":{"query":"'
room=$((1048588 - 72 - ${#key}))
body="$head$(pad $((room - ${#head} - 3)) x)"
max="$body\"}}"
[ ${#max} = "$room" ] || fail "the command at the broker's maximum is ${#max} bytes, want $room"
printf '%sy"}}\n' "$body" >"$RUN/over.bin"
"$BIN" send --lines "$RUN/over.bin" -X message.max.bytes=2000000 >"$RUN/over.out" 2>&1 \
    && fail "a value one byte over the broker's maximum was accepted: the maximum is wrong"
printf '%s\n' "$max" | lines max -X message.max.bytes=2000000
answered max
check_big() {
expect mb-$$ '(.error | test("step result of s1 is [0-9]+ bytes, over")) and .error_class == "permanent"
    and .truncated == ["command"] and .correlation_id == "mb-'$$'"' "1 MB command"
expect max-$$ '(.error | startswith("unknown workflow '"'nope'"'")) and .truncated == ["command"] and .correlation_id == "max-'$$'"' \
    "command at the broker's maximum"
pass "a 1 MB command and one at the broker's maximum ($room bytes): dead-lettered, trimmed to fit, saying so"
}

# 2. JSON nested 100,000 deep (jansson stops at 2048): malformed, raw bytes kept.
open=$(pad 100000 '[')
close=$(pad 100000 ']')
deep="{\"correlation_id\":\"deep-$$\",\"workflow\":\"noop\",\"attrs\":{\"a\":$open$close}}"
printf '%s\n' "$deep" | lines deep
answered deep
check_deep() {
expect_raw "$deep" '(.error | startswith("malformed JSON")) and .command == null and .truncated == null' "100,000 deep"
pass "JSON nested 100,000 deep: malformed, with its raw bytes"
}

# 3. Invalid UTF-8, in values and keys: a stray byte, a bad continuation,
# an overlong '/', a UTF-16 surrogate, a cut sequence, a 5-byte form, and
# the escape of a lone surrogate.
bads=($'\xff' $'\xc3\x28' $'\xc0\xaf' $'\xed\xa0\x80' $'\xe2\x82' $'\xf8\x88\x80\x80\x80' '\ud800')
i=0
for bad in "${bads[@]}"; do
    i=$((i + 1))
    "$BIN" send --raw '{"correlation_id":"utf'$i'-'$$'","workflow":"noop","attrs":{"q":"a'"$bad"'b"}}' >/dev/null
    "$BIN" send --raw '{"correlation_id":"utfk'$i'-'$$'","workflow":"noop","attrs":{"k'"$bad"'":1}}' >/dev/null
    answered "utf$i"
done
check_utf8() {
local i=0 bad
for bad in "${bads[@]}"; do
    i=$((i + 1))
    expect_raw '{"correlation_id":"utf'$i'-'$$'","workflow":"noop","attrs":{"q":"a'"$bad"'b"}}' \
        '(.error | startswith("malformed JSON")) and .command == null' "invalid UTF-8 #$i in a value"
    expect_raw '{"correlation_id":"utfk'$i'-'$$'","workflow":"noop","attrs":{"k'"$bad"'":1}}' \
        '(.error | startswith("malformed JSON")) and .command == null' "invalid UTF-8 #$i in a key"
done
pass "invalid UTF-8 (7 forms, in values and keys): malformed, with the raw bytes"
}

# 4. NUL bytes: raw in a string and after the value (malformed); escaped
# in attrs (a normal command: answered, and written back escaped), in the
# correlation id and in the workflow name (refused, never run as "noop").
printf '{"correlation_id":"nul1-%s","workflow":"noop","attrs":{"q":"a\0b"}}\n' $$ | lines nul1
answered nul1
printf '{"correlation_id":"nul2-%s","workflow":"noop"}\0\n' $$ | lines nul2
answered nul2
out=$(send nul3-$$ noop '{"query":"a\u0000b"}') || fail "a command with \\u0000 in attrs failed: $out"
echo "$out" | jq -e -s 'any(.value.status == "step_result" and .value.result.query == "a\u0000b")' >/dev/null \
    || fail "\\u0000 in attrs did not come back: $out"
"$BIN" send --raw '{"correlation_id":"a\u0000b","workflow":"noop","attrs":{"q":"nul4-'$$'"}}' >/dev/null
"$BIN" send --raw '{"correlation_id":"nul5-'$$'","workflow":"noop\u0000../x","attrs":{}}' >/dev/null
answered nul5
check_nul() {
expect_b64 "$(printf '{"correlation_id":"nul1-%s","workflow":"noop","attrs":{"q":"a\0b"}}' $$ | base64 -w0)" \
    '(.error | startswith("malformed JSON")) and .command == null' "a raw NUL in a string"
expect_b64 "$(printf '{"correlation_id":"nul2-%s","workflow":"noop"}\0' $$ | base64 -w0)" \
    '(.error | startswith("malformed JSON")) and .command == null' "a NUL after the value"
expect_where '.command.attrs.q == "nul4-'$$'"' '.error == "correlation_id has a NUL byte" and .correlation_id == null
    and .command.correlation_id == "a\u0000b"' "NUL in the correlation id"
expect nul5-$$ '.error == "workflow has a NUL byte" and .command.workflow == "noop\u0000../x"' "NUL in the workflow"
[ -z "$(messages "$RESPONSES" | jq -c 'select(.key == "nul5-'$$'")')" ] || fail "\"noop\\u0000../x\" ran noop"
pass "NUL bytes: raw ones are malformed JSON; escaped ones answered in attrs, refused in correlation_id and workflow"
}

# 5. Duplicate keys, at the top and inside attrs; integers beyond 64 bits.
dup1='{"correlation_id":"dup1-'$$'","correlation_id":"other","workflow":"noop"}'
dup2='{"correlation_id":"dup2-'$$'","workflow":"noop","attrs":{"q":1,"q":2}}'
big='{"correlation_id":"int-'$$'","workflow":"noop","attrs":{"q":123456789012345678901234567890}}'
neg='{"correlation_id":"neg-'$$'","workflow":"noop","attrs":{"q":-1e400}}'
for raw in "$dup1" "$dup2" "$big" "$neg"; do
    "$BIN" send --raw "$raw" >/dev/null
    answered "${raw:19:4}"
done
check_dup() {
local raw
for raw in "$dup1" "$dup2"; do
    expect_raw "$raw" '(.error | test("malformed JSON: duplicate")) and .command == null' "duplicate key"
done
for raw in "$big" "$neg"; do
    expect_raw "$raw" '(.error | startswith("malformed JSON")) and .command == null' "number out of range"
done
pass "duplicate keys and numbers out of range: malformed, with the raw bytes"
}

# 6. correlation_id empty, of the wrong type, 10 KB.
cid10k=$(pad 10240 c)
"$BIN" send --raw '{"correlation_id":"","workflow":"noop","attrs":{"q":"cid1-'$$'"}}' >/dev/null
"$BIN" send --raw '{"correlation_id":42,"workflow":"noop","attrs":{"q":"cid2-'$$'"}}' >/dev/null
"$BIN" send --raw '{"correlation_id":{"a":1},"workflow":"noop","attrs":{"q":"cid3-'$$'"}}' >/dev/null
printf '{"correlation_id":"%s","workflow":"noop","attrs":{"q":"cid4-%s"}}\n' "$cid10k" $$ | lines cid4
answered cid
check_cid() {
expect_where '.command.attrs.q == "cid1-'$$'"' '.error == "correlation_id is empty" and .correlation_id == null' "empty correlation_id"
expect_where '.command.attrs.q == "cid2-'$$'"' '.error == "correlation_id must be a string" and .command.correlation_id == 42' "numeric correlation_id"
expect_where '.command.attrs.q == "cid3-'$$'"' '.error == "correlation_id must be a string"' "object correlation_id"
expect_where '.command.attrs.q == "cid4-'$$'"' '.error == "correlation_id is longer than 1024 bytes (10240)"
    and .correlation_id == null and (.command.correlation_id | length) == 10240' "10 KB correlation_id"
pass "correlation_id empty, a number, an object, 10 KB: each dead-lettered with the reason"
}

# 7. workflow with path characters, empty, 10 KB: never a file name.
wf10k=$(pad 10240 w)
"$BIN" send --raw '{"correlation_id":"wf1-'$$'","workflow":"../../etc/passwd"}' >/dev/null
"$BIN" send --raw '{"correlation_id":"wf2-'$$'","workflow":""}' >/dev/null
printf '{"correlation_id":"wf3-%s","workflow":"%s"}\n' $$ "$wf10k" | lines wf3
answered wf
check_wf() {
expect wf1-$$ '(.error | startswith("unknown workflow '"'../../etc/passwd'"'")) and .workflow == "../../etc/passwd"' "workflow ../../etc/passwd"
expect wf2-$$ '.error == "workflow is empty"' "empty workflow"
expect wf3-$$ '(.error | startswith("unknown workflow '"'www"'") and contains("...'"'"'")) and (.error | length) < 400
    and (.workflow | length) == 10240' "10 KB workflow"
pass "workflow ../../etc/passwd, empty, 10 KB: unknown or empty, the name quoted short"
}

# 8. reply_topic: the commands topic itself, and a legal name the broker
# cannot create (it collides with the commands topic once '.' and '_' are
# taken as equal); both go to the default DLQ with the reason.  A good
# custom reply topic gets its own DLQ (the second DLQ checked below).
collide=${KAFKA_COMMANDS_TOPIC//./_}
"$BIN" send --raw '{"correlation_id":"rt1-'$$'","workflow":"noop","reply_topic":"'"$KAFKA_COMMANDS_TOPIC"'","attrs":{"query":"x"}}' >/dev/null
answered rt1
"$BIN" send --raw '{"correlation_id":"rt2-'$$'","workflow":"noop","reply_topic":"'"$collide"'","attrs":{"query":"x"}}' >/dev/null
answered rt2
send rt3-$$ nope '{}' --reply-topic "$CUSTOM" >"$RUN/rt3.out" 2>&1 && fail "nope succeeded"
grep -q '"topic":"'"$CUSTOM.dlq"'"' "$RUN/rt3.out" || fail "rt3: no DLQ entry on $CUSTOM.dlq: $(cut -c1-300 "$RUN/rt3.out")"
send rt4-$$ noop '{"query":"custom"}' --reply-topic "$CUSTOM" >"$RUN/rt4.out" 2>&1 || fail "noop to $CUSTOM failed: $(cut -c1-300 "$RUN/rt4.out")"
check_rt() {
expect rt1-$$ '(.error | test("commands topic")) and (.dead_letter.reason | test("commands topic"))' "reply_topic = the commands topic"
# (librdkafka waits topic.metadata.propagation.max.ms, 30 s, for the topic
# to appear before it gives up; the commands after it did not wait; its
# offset completes with the entry, so settle waited for it.)
expect rt2-$$ '(.error | test("Unknown topic")) and (.dead_letter.reason | test("Unknown topic"))
    and .dead_letter.topic == "'"$collide"'.dlq"' "reply_topic that cannot be created"
expect rt3-$$ '(.error | startswith("unknown workflow '"'nope'"'")) and .dead_letter == null' "unknown workflow, custom reply topic" "$CUSTOM.dlq"
pass "reply_topic the commands topic or uncreatable: the default DLQ with the reason; a custom one has its own DLQ"
}

# 9. attrs not an object.
i=0
for a in '"x"' 5 true '[{}]'; do
    i=$((i + 1))
    "$BIN" send --raw '{"correlation_id":"attrs'$i'-'$$'","workflow":"noop","attrs":'"$a"'}' >/dev/null
done
answered attrs
check_attrs() {
local i
for i in 1 2 3 4; do expect attrs$i-$$ '.error == "attrs must be a JSON object" and .command.attrs != null' "attrs #$i"; done
pass "attrs a string, a number, a boolean, an array: dead-lettered"
}

# 10. Headers with binary values (and a key that is not UTF-8): answered,
# and kept in the DLQ (value_base64 / key_base64 for bytes that are not
# UTF-8 text).
send hdr1-$$ noop '{"query":"h"}' --header $'bin=\x01\xff\xfe' --header $'\xffk=v' >/dev/null \
    || fail "binary headers: not answered"
send hdr2-$$ nope '{}' --header $'bin=\x01\xff\xfe' --header $'\xffk=v' --header 'text=ok' >/dev/null && fail "nope succeeded"
check_headers() {
expect hdr2-$$ '.headers == [{"key":"bin","value_base64":"Af/+"},{"key_base64":"/2s=","value":"v"},{"key":"text","value":"ok"}]' \
    "binary headers in the DLQ"
pass "headers with binary values: answered; in the DLQ as value_base64"
}

# 11. A workflow whose step result and outcome hold bytes that are not
# UTF-8 and NUL bytes (tests/integration/workflows/rawbytes.lua): answered,
# the bytes as U+FFFD (checked strictly below); `run` prints the same.
out=$(send rawbytes-$$ rawbytes '{"query":"b"}') || fail "rawbytes: not answered: $out"
echo "$out" | jq -e -s 'length == 2 and .[0].value.status == "step_result" and .[1].value.result.out == "caf\ufffd\u0000"' \
    >/dev/null || fail "rawbytes: $out"
"$BIN" run rawbytes --attrs '{"query":"b"}' >"$RUN/run.out" || fail "run rawbytes failed"
python3 -c 'import json, sys; [json.loads(l.decode("utf-8")) for l in open(sys.argv[1], "rb")]' "$RUN/run.out" \
    || fail "run rawbytes: not strict UTF-8 JSON"
[ "$(jq -r .status "$RUN/run.out" | tr '\n' ' ')" = "step_result success " ] || fail "run rawbytes: $(cat "$RUN/run.out")"
pass "a workflow writing bytes that are not UTF-8 and NUL bytes: answered as U+FFFD and \\u0000, by serve and by run"

# 12. Nothing stuck: every offset committed, so every entry above is in
# its DLQ (an offset completes only when its outcome is delivered); one
# snapshot of each DLQ then answers every check.  Nothing written that a
# strict parser rejects.
wait_committed
kill -0 "$(cat "$RUN/a.pid")" || fail "the service died"
snapshot "$DLQ"
snapshot "$CUSTOM.dlq"
check_big
check_deep
check_utf8
check_nul
check_dup
check_cid
check_wf
check_rt
check_attrs
check_headers
strict_json "$RESPONSES" "$DLQ" "$CUSTOM" "$CUSTOM.dlq" >"$RUN/strict.out"
pass "offsets committed; every message on the responses topic and both DLQs is strict UTF-8 JSON ($(cat "$RUN/strict.out"))"
stop_service a
finish

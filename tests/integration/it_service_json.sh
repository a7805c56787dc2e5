#!/usr/bin/env bash
# JSON through the real service (issue 9, items 8 and 9): numbers in a
# command come back exact in its step_result and success, commands that
# are not strict JSON (trailing bytes, invalid UTF-8) are dead-lettered as
# malformed instead of run, and everything on the responses and DLQ topics
# is valid UTF-8.  It checks the envelopes on the wire, whichever code
# parses and writes them.  Exact numbers are checked on the raw text: jq
# 1.6 reads every number as a double.
source "$(dirname "$0")/lib.sh"
start_service a

# 1. A 64-bit integer comes back digit for digit; a float needing all 17
# digits comes back as the same double.
out=$(send num-$$ noop '{"query":12345678901234567}')
[ "$(echo "$out" | wc -l)" = 2 ] || fail "numbers: $out"
step=$(echo "$out" | sed -n 1p)
echo "$step" | jq -e '.value.status == "step_result" and .value.result.step_id == "s1"' >/dev/null \
    || fail "numbers: no step_result first: $out"
echo "$step" | grep -qF '"query":12345678901234567' || fail "step_result query not exact: $step"
echo "$step" | grep -qF '{\"query\":12345678901234567}' || fail "step_result payload not exact: $step"
echo "$out" | sed -n 2p | jq -e '.value.status == "success"' >/dev/null || fail "numbers: no success: $out"
out=$(send flt-$$ noop '{"query":0.30000000000000004}')
echo "$out" | jq -e -s 'length == 2 and .[0].value.result.query == 0.30000000000000004
    and (.[0].value.result.payload | fromjson | .query) == 0.30000000000000004
    and .[1].value.status == "success"' >/dev/null || fail "float did not round-trip: $out"
pass "numbers: 12345678901234567 and 0.30000000000000004 come back exact in step_result and payload; success"

# 2. Not strict JSON: dead-lettered as malformed, never run.
"$BIN" send --raw '{"correlation_id":"trail-'$$'","workflow":"noop","attrs":{"query":"x"}} garbage' >/dev/null
"$BIN" send --raw "$(printf '{"correlation_id":"utf-%s","workflow":"noop","attrs":{"query":"\xff"}}' $$)" >/dev/null
wait_count "$DLQ" 2 '(.value.command_base64 // "" | @base64d | test("(trail|utf)-'$$'"))'
dlq=$(messages "$DLQ" | jq -c 'select(.value.command_base64 // "" | @base64d | test("(trail|utf)-'$$'")) | .value')
echo "$dlq" | jq -e -s 'length == 2 and all(.status == "error" and .error_class == "permanent"
    and (.error | startswith("malformed JSON")))
    and any(.error | contains("end of file expected")) and any(.error | contains("0xff"))' >/dev/null \
    || fail "malformed commands: $dlq"
messages "$RESPONSES" | grep -qE '"(trail|utf)-'$$'"' && fail "a malformed command was answered on $RESPONSES"
pass "trailing bytes and invalid UTF-8 in a command: dead-lettered as malformed JSON, not run"

# 3. A step that returns bytes that are not UTF-8: U+FFFD on the wire.
out=$(send bytes-$$ bytes '{}')
echo "$out" | jq -e -s 'length == 2 and .[1].value.status == "success"' >/dev/null \
    || fail "bytes: $out"
# on the raw text: jq itself would read a bad byte as U+FFFD
echo "$out" | sed -n 1p | grep -qF "$(printf '"payload":"raw \xef\xbf\xbd byte"')" \
    || fail "bytes: payload not written with U+FFFD: $out"
pass "invalid UTF-8 written by a step reaches $RESPONSES as U+FFFD"

# 4. Everything written is valid UTF-8.
for t in "$RESPONSES" "$DLQ"; do
    messages "$t" >"$RUN/all.jsonl"
    iconv -f UTF-8 -t UTF-8 "$RUN/all.jsonl" >/dev/null || fail "$t carries invalid UTF-8"
    jq -e . "$RUN/all.jsonl" >/dev/null || fail "$t carries invalid JSON"
done
pass "every message on $RESPONSES and $DLQ is valid UTF-8 JSON"

wait_committed
stop_service a
finish

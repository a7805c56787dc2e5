#!/usr/bin/env bash
# The Kafka subcommands against the real broker: tail prints valid JSON
# whatever the message holds (checked by a strict parser), send -H puts
# headers on the message, -o/-e/-c start and stop where kcat's do (kcat
# itself reads the same topic), offsets prints null for a partition the
# group never committed, send --lines draws its progress on a terminal.
source "$(dirname "$0")/lib.sh"

# Strict JSON lines on stdin: UTF-8, no NaN/Infinity, no duplicate keys,
# one value per line.  Prints the number of lines.
strict_json() {
    python3 -c '
import json, sys
def pairs(kv):
    keys = [k for k, _ in kv]
    if len(keys) != len(set(keys)): raise ValueError("duplicate key")
    return dict(kv)
def const(c): raise ValueError("not JSON: " + c)
n = 0
for line in sys.stdin.buffer.read().decode("utf-8", "strict").splitlines():
    json.loads(line, object_pairs_hook=pairs, parse_constant=const)
    n += 1
print(n)'
}

"$BIN" topics >/dev/null
scratch="it.$uniq.scratch"
KAFKA_COMMANDS_TOPIC=$scratch TOPIC_PARTITIONS=1 "$BIN" topics >/dev/null

# 1. send -H and -K; tail shows headers, timestamps, and values that are
# not JSON as strings (or base64 when not text).
"$BIN" send --raw 'plain text, not JSON' -t "$scratch" -H traceparent=00-abc-01 -H flag \
    -H "$(printf 'bin=\x01\xff')" >/dev/null
"$BIN" send --raw "$(printf 'k1:\xff\xfe raw')" -K : -t "$scratch" >/dev/null
"$BIN" send --raw '{"a":1,"a":2}' -t "$scratch" >/dev/null
"$BIN" send --raw '{"nested":{"ok":[1,2.5,"\u00e9"]}}' -t "$scratch" -H 'k=v=w' >/dev/null
out=$("$BIN" tail -t "$scratch" -o beginning -e)
[ "$(echo "$out" | strict_json)" = 4 ] || fail "tail output is not 4 strict JSON lines: $out"
echo "$out" | jq -e -s '
    .[0].value == "plain text, not JSON" and .[0].key == null
    and .[0].headers == [{"key":"traceparent","value":"00-abc-01"},{"key":"flag","value":null},
                         {"key":"bin","value_base64":"Af8="}]
    and (.[0].timestamp | type) == "number" and .[0].timestamp > 1600000000000
    and .[1].key == "k1" and .[1].value_base64 == "//4gcmF3" and (.[1] | has("value") | not)
    and .[1].headers == []
    and .[2].value == "{\"a\":1,\"a\":2}"
    and .[3].value == {"nested":{"ok":[1,2.5,"é"]}} and .[3].headers == [{"key":"k","value":"v=w"}]
    and all(.topic == "'"$scratch"'" and .partition == 0)' >/dev/null \
    || fail "tail lines: $out"
kc=$(kcat -b "$KAFKA_BROKERS" -C -t "$scratch" -o beginning -e -q -f '%k|%h|%s\n' 2>/dev/null | head -1)
[ "$kc" = "|traceparent=00-abc-01,flag=NULL,bin=$(printf '\x01\xff')|plain text, not JSON" ] \
    || fail "kcat sees the first message as: $kc"
pass "send -H/-K put headers and keys on messages (kcat agrees); tail prints strict JSON with headers, timestamps, non-JSON values as strings, binary as base64"

# 2. -o / -e / -c start and stop where kcat's do (10 messages, one partition).
for i in $(seq 0 9); do echo "m$i"; done | "$BIN" send --lines - -t "$scratch" >/dev/null
ours() { timeout 60 "$BIN" tail -t "$scratch" "$@" | jq -r '.offset' | tr '\n' ' '; }
theirs() { timeout 60 kcat -b "$KAFKA_BROKERS" -C -t "$scratch" -q -f '%o ' "$@" 2>/dev/null; }
# s@MS: the first message at or after MS (messages sent together may share
# a timestamp, so the expected offsets come from the timestamps themselves).
ts=$(kcat -b "$KAFKA_BROKERS" -C -t "$scratch" -o 9 -c 1 -q -f '%T' 2>/dev/null)
at_ts=$(kcat -b "$KAFKA_BROKERS" -C -t "$scratch" -o beginning -e -q -f '%o %T\n' 2>/dev/null |
    awk -v ts="$ts" '$2 >= ts && !found { found = 1 } found { printf "%s ", $1 }')
check_like_kcat() {
    local want=$1
    shift
    local a b
    a=$(ours "$@")
    b=$(theirs "$@")
    [ "$a" = "$want" ] || fail "tail $*: offsets '$a', want '$want'"
    [ "$a" = "$b" ] || fail "tail $*: offsets '$a', kcat '$b'"
}
check_like_kcat "0 1 2 3 4 5 6 7 8 9 10 11 12 13 " -o beginning -e
check_like_kcat "11 12 13 " -o -3 -e
check_like_kcat "6 7 8 9 10 11 12 13 " -o 6 -e
check_like_kcat "2 3 4 " -o 2 -c 3
check_like_kcat "" -o end -e
check_like_kcat "$at_ts" -o "s@$ts" -e
[[ " $at_ts" == *" 9 "* ]] || fail "s@: offset 9 is not among '$at_ts'"
[ "$(ours --from-beginning -c 2)" = "0 1 " ] || fail "--from-beginning -c 2: $(ours --from-beginning -c 2)"
# Several partitions, some empty: -e still ends once each is at its end.
n=$(timeout 60 "$BIN" tail -t "$scratch" -t "$RESPONSES" "$DLQ" -o beginning -e | strict_json)
[ "$n" = 14 ] || fail "tail over three topics read $n messages, want 14"
pass "-o beginning|end|N|-N|s@MS, -e and -c read the same offsets as kcat; -e ends over empty partitions"

# 3. offsets: null for partitions the group never committed.
lines=$("$BIN" offsets)
echo "$lines" | jq -e -s 'length == 4 and (.[0:3] | all(.committed == null and .end == 0 and .lag == 0))
    and .[3].committed == null and .[3].lag == 0' >/dev/null || fail "offsets before: $lines"
start_service a
send off-$$ noop '{"query":"x"}' >/dev/null
wait_committed
lines=$("$BIN" offsets)
[ "$(echo "$lines" | strict_json)" = 4 ] || fail "offsets is not strict JSON: $lines"
echo "$lines" | jq -e -s '
    ([.[0:3][] | select(.committed == 1 and .end == 1 and .lag == 0)] | length) == 1
    and ([.[0:3][] | select(.committed == null and .end == 0 and .lag == 0)] | length) == 2
    and .[3].group == env.KAFKA_GROUP_ID and .[3].committed == 1 and .[3].lag == 0' >/dev/null \
    || fail "offsets after one command: $lines"
stop_service a
grep -q -- '-1001' <<<"$lines" && fail "offsets printed -1001: $lines"
pass "offsets: null where the group committed nothing, the offset where it did"

# 4. send --lines: -c limits, -K keys, a progress line on a terminal only.
printf 'a:1\nb:2\nc:3\n' >"$RUN/kv.txt"
"$BIN" send --lines "$RUN/kv.txt" -K : -c 2 -t "$scratch" >"$RUN/sent.out" 2>"$RUN/sent.err"
grep -q "sent 2 commands" "$RUN/sent.out" || fail "send -c 2: $(cat "$RUN/sent.out")"
[ ! -s "$RUN/sent.err" ] || fail "send --lines wrote to a stderr that is not a terminal: $(cat -v "$RUN/sent.err")"
got=$("$BIN" tail -t "$scratch" -o -2 -e | jq -c '[.key, .value]' | tr -d '\n')
[ "$got" = '["a",1]["b",2]' ] || fail "send --lines -K : -c 2 sent $got"
script -qfec "$BIN send --lines $RUN/kv.txt -t $scratch" /dev/null >"$RUN/tty.out"
grep -aq $'\r''sent 1, delivered' "$RUN/tty.out" || fail "no progress line on a terminal: $(cat -v "$RUN/tty.out")"
grep -aq "sent 3 commands to $scratch" "$RUN/tty.out" || fail "no summary: $(cat -v "$RUN/tty.out")"
pass "send --lines: -c 2 sends two, -K splits key and value, progress only on a terminal"
finish

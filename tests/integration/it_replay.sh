#!/usr/bin/env bash
# replay against the real broker, Redis and service: a workflow fails
# permanently, is fixed and hot-reloaded, and `replay` re-runs exactly the
# failed commands of that workflow, once each, with their original headers;
# they succeed; a second replay sends nothing.  Also: --dry-run sends and
# marks nothing, --rate spaces the commands, a failed delivery leaves no
# mark, a progress line is drawn on a terminal only.
source "$(dirname "$0")/lib.sh"
export WORKFLOWS_DIR="$RUN/wf"
mkdir -p "$WORKFLOWS_DIR"

# fixme: counts its runs per attrs.id, and fails until it is fixed.
fixme() {
    cat >"$RUN/fixme.tmp" <<EOF
return {
  intent = "fixme",
  steps = {
    {
      id = "s1",
      run = function(A)
        local n = sio.kv.incr("runs:" .. A.id)
        if not $1 then error("not fixed yet: " .. A.id) end
        return { id = A.id, runs = n }
      end,
    },
  },
}
EOF
    mv "$RUN/fixme.tmp" "$WORKFLOWS_DIR/fixme.lua" # one rename: the watcher sees a whole file
}
fixme false

# One worker, so one "workflows reloaded" line means new commands see it.
start_service a WORKER_COUNT=1
ids="f1-$$ f2-$$ f3-$$"
for id in $ids; do
    send "$id" fixme '{"id":"'"$id"'"}' -H traceparent=00-$id-01 -H "$(printf 'bin=\xff\x01')" \
        >/dev/null && fail "fixme succeeded before the fix"
done
send other-$$ nope '{}' -H traceparent=00-other-01 >/dev/null && fail "unknown workflow succeeded"
wait_count "$DLQ" 4 '.value.status == "error"'
for id in $ids; do [ "$(kv_get fixme "runs:$id")" = 1 ] || fail "$id ran $(kv_get fixme "runs:$id") times"; done
pass "three fixme commands and one for an unknown workflow were dead-lettered"

# Before the fix: a dry run says what would go and sends and marks nothing.
out=$("$BIN" replay --workflow fixme --dry-run)
echo "$out" | jq -e -s '(.[0:3] | all(.result == "would_replay" and .workflow == "fixme"))
    and ([.[0:3][].correlation_id] | sort) == ($ids | split(" ") | sort)
    and .[3].summary.would_replay == 3 and .[3].summary.read == 4 and .[3].summary.dry_run' \
    --arg ids "$ids" >/dev/null || fail "dry run: $out"
[ "$(messages "$KAFKA_COMMANDS_TOPIC" 1s | wc -l)" = 4 ] || fail "the dry run sent something"
[ -z "$(redis --scan --pattern "${REPLAY_KEY_PREFIX}*")" ] || fail "the dry run left marks"
pass "--dry-run lists the three entries, sends nothing, marks nothing"

# A delivery that fails (an invalid target topic) leaves no mark.
out=$("$BIN" replay --workflow fixme --target 'not a topic!' -c 1) && fail "replay to an invalid topic exited 0"
echo "$out" | jq -e -s '.[0].result == "failed" and (.[0].reason | test("not delivered"))
    and .[1].summary.failed == 1' >/dev/null || fail "failed delivery: $out"
[ -z "$(redis --scan --pattern "${REPLAY_KEY_PREFIX}*")" ] || fail "a failed delivery left a mark"
pass "a delivery that fails: exit 1, reported, no mark left"

# The fix, hot-reloaded.
reloads=$(grep -c '"workflows reloaded"' "$RUN/a.err" || true)
fixme true
for _ in $(seq 1 300); do
    [ "$(grep -c '"workflows reloaded"' "$RUN/a.err" || true)" -gt "$reloads" ] && break
    sleep 0.1
done
[ "$(grep -c '"workflows reloaded"' "$RUN/a.err" || true)" -gt "$reloads" ] || fail "the fix was not reloaded"

# Replay, on a terminal (the progress line), at most 2 a second.
script -qfec "$BIN replay --workflow fixme --error 'not fixed yet' --rate 2" /dev/null >"$RUN/replay.tty"
[ "$(grep -ac '"result":"replayed"' "$RUN/replay.tty")" = 3 ] || fail "replay: $(cat -v "$RUN/replay.tty")"
grep -aq $'\r''read [0-9]* of 4, replayed' "$RUN/replay.tty" || fail "no progress line: $(cat -v "$RUN/replay.tty")"
# The JSON lines, without the progress line drawn and erased around them.
tr -d '\r' <"$RUN/replay.tty" | sed 's/.*\x1b\[K//' | grep '^{' >"$RUN/replay.out"
jq -e -s '(.[0:3] | all(.result == "replayed" and .target.topic == env.KAFKA_COMMANDS_TOPIC))
    and .[3].summary.replayed == 3 and .[3].summary.matched == 3 and .[3].summary.failed == 0' \
    "$RUN/replay.out" >/dev/null || fail "replay output: $(cat "$RUN/replay.out")"
for id in $ids; do
    wait_count "$RESPONSES" 1 '.key == "'"$id"'" and .value.status == "success"'
done
for id in $ids; do [ "$(kv_get fixme "runs:$id")" = 2 ] || fail "$id ran $(kv_get fixme "runs:$id") times, want 2"; done
pass "after the fix, replay re-ran exactly the three failed fixme commands, once each, and they succeeded"

# What went to the commands topic: the original commands with their
# headers (binary ones too), plus where each came from; the unknown
# workflow's command was not sent again; --rate 2 spaced them.
cmds=$(messages "$KAFKA_COMMANDS_TOPIC" 1s)
echo "$cmds" | jq -e -s --arg dlq "$DLQ" '
    [.[] | select(.headers | any(.key == "sio-replay-of"))] as $r
    | ($r | length) == 3
    and ($r | all(.value.workflow == "fixme" and .value.attrs == {"id": .key} and (.value | has("utter") | not)
        and .headers[0] == {"key":"traceparent","value":("00-" + .key + "-01")}
        and .headers[1] == {"key":"bin","value_base64":"/wE="}
        and (.headers[2].value | startswith($dlq + "/"))))
    and ([.[] | select(.key | startswith("other-"))] | length) == 1' >/dev/null \
    || fail "commands topic after replay: $(echo "$cmds" | jq -c '{key, headers, value}')"
spread=$(echo "$cmds" | jq -s '[.[] | select(.headers | any(.key == "sio-replay-of")) | .timestamp] | max - min')
# 2 a second: the third goes 1 s after the first (990: the producer's
# timestamps and replay's clock are each rounded to the millisecond).
[ "$spread" -ge 990 ] || fail "--rate 2: three commands within $spread ms"
mark=$(redis GET "${REPLAY_KEY_PREFIX}$(echo "$cmds" | jq -r -s '[.[] | .headers[] | select(.key == "sio-replay-of")][0].value | split("/") | join(":")')")
echo "$mark" | jq -e '.state == "replayed" and .target == env.KAFKA_COMMANDS_TOPIC and (.target_offset | type) == "number"' \
    >/dev/null || fail "mark: $mark"
pass "replayed commands are the originals with their headers and a sio-replay-of header; marked in Redis; --rate 2 spread them over ${spread} ms"

# A second replay sends nothing.
out=$("$BIN" replay --workflow fixme) || fail "second replay exited $?: $out"
echo "$out" | jq -e -s '(.[0:3] | all(.result == "already_replayed" and .mark.state == "replayed"))
    and .[3].summary.replayed == 0 and .[3].summary.already_replayed == 3' >/dev/null \
    || fail "second replay: $out"
[ "$(messages "$KAFKA_COMMANDS_TOPIC" 1s | wc -l)" = 7 ] || fail "the second replay sent something"
for id in $ids; do [ "$(kv_get fixme "runs:$id")" = 2 ] || fail "$id ran again"; done
[ "$(messages "$DLQ" | wc -l)" = 4 ] || fail "new DLQ entries: $(messages "$DLQ" | jq -c .value.error)"
pass "a second replay sends nothing: every entry is already marked replayed"
wait_committed
stop_service a
finish

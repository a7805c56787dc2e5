#!/usr/bin/env bash
# What the engine puts in dead-letter entries, through `serve` and the real
# broker (issue 9, items 7 and 9): attrs cannot stand in for a step's
# output; errors are readable (no heap addresses), name files relative to
# the configured folders (here absolute paths) and the user's line for a
# failed require; a limit names the step it hit in; SIO_PUBLISH_LIMIT caps
# a command's step results + sio.publish calls; and a set of workflows with
# a duplicate intent stops `serve` at start (exit 2, file and line) instead
# of serving part of it.
source "$(dirname "$0")/lib.sh"

WF=$RUN/wf
mkdir -p "$WF" "$RUN/lua/tools"
cat >"$WF/forge.yaml" <<'EOF'
intent: forge
steps:
  - id: s1
    guard: "A.tier == 'gold'"
    tool: {name: echo, args: {q: "${A.query}"}}
  - id: s2
    tool: {name: echo, args: {from_s1: "${A.s1.json.q}"}}
    publish_result: true
EOF
cat >"$WF/hog.yaml" <<'EOF'
intent: hog
steps:
  - id: first
    tool: {name: echo}
  - id: hog
    run: "while true do end"
EOF
cat >"$WF/raise.yaml" <<'EOF'
intent: raise
steps:
  - id: s1
    run: |
      if A.kind == "table" then error({ code = 42 }) end
      if A.kind == "require" then return require("nosuch") end
      local t = nil
      return t.field
EOF
cat >"$WF/pub.yaml" <<'EOF'
intent: pub
steps:
  - id: spam
    run: |
      for i = 1, 10 do sio.publish("p" .. i) end
EOF
export WORKFLOWS_DIR=$WF LUA_DIR=$RUN/lua
start_service a SIO_INSTR_LIMIT=5000000 SIO_PUBLISH_LIMIT=5

send forge-$$ forge '{"tier":"silver","s1":{"payload":"FORGED","json":{"q":"FORGED"}}}' >/dev/null \
    && fail "forged attrs succeeded"
send hog-$$ hog '{}' >/dev/null && fail "the spinning step succeeded"
send table-$$ raise '{"kind":"table"}' >/dev/null && fail "error({code = 42}) succeeded"
send path-$$ raise '{}' >/dev/null && fail "a nil index succeeded"
send require-$$ raise '{"kind":"require"}' >/dev/null && fail "require of a missing module succeeded"
send pub-$$ pub '{}' >/dev/null && fail "10 publishes under SIO_PUBLISH_LIMIT=5 succeeded"
wait_count "$DLQ" 6 '.value.status == "error"'
dlq=$(messages "$DLQ")
entry() { echo "$dlq" | jq -c "select(.key == \"$1-$$\") | .value"; }
check() { # check NAME JQ WHAT
    entry "$1" | jq -e -s "length == 1 and (.[0] | $2)" >/dev/null || fail "$3: $(entry "$1")"
}
check forge '.error == "attrs key '"'s1'"' is the id of a step of workflow '"'forge'"': step outputs are A.<step id>, so attrs may not use step ids"
    and .error_class == "permanent" and .step == null and .command.attrs.s1.payload == "FORGED"' "forged attrs"
messages "$RESPONSES" | jq -e -s 'all(.key != "forge-'$$'")' >/dev/null || fail "forge published something"
pass "attrs that use a step id are dead-lettered permanently, naming the key; nothing runs"

check hog '.error == "instruction limit exceeded" and .step == "hog" and .error_class == "permanent"' "limit"
pass "a limit names the step it hit in"

check table '.error == "error raised with a table value that has no message field (keys: code)" and .step == "s1"' \
    "table error"
echo "$dlq" | jq -e -s 'all(.value.error | test("0x[0-9a-f]+") | not)' >/dev/null || fail "an address in: $dlq"
check path '.error == "raise.yaml:8: attempt to index a nil value (local '"'t'"')"' "relative file name"
echo "$dlq" | grep -q "$RUN" && fail "the host's path is in a dead-letter entry: $(echo "$dlq" | grep "$RUN")"
check require '.error | startswith("raise.yaml:6: require: module '"'nosuch'"' not found")' "require line"
pass "errors are readable: no addresses, files relative to WORKFLOWS_DIR, require blames the user's line"

check pub '.error == "publish limit exceeded: more than 5 step results and sio.publish calls in one command (SIO_PUBLISH_LIMIT)"
    and .step == "spam" and .error_class == "permanent"' "publish limit"
wait_count "$RESPONSES" 5 '.key == "pub-'$$'"'
n=$(messages "$RESPONSES" | jq -c 'select(.key == "pub-'$$'")' | wc -l)
[ "$n" = 5 ] || fail "pub: $n messages on $RESPONSES, want the 5 step results under the limit"
pass "SIO_PUBLISH_LIMIT=5: five step results, then a permanent error naming the limit"

wait_committed
stop_service a

# A duplicate intent at start: exit 2 naming file and line, as validate
# does and as a reload would reject it.  (timeout only bounds a failure.)
mkdir -p "$RUN/dup"
cp "$WF/hog.yaml" "$RUN/dup/a.yaml"
{ echo "# the same intent again"; cat "$WF/hog.yaml"; } >"$RUN/dup/b.yaml"
rc=0
WORKFLOWS_DIR=$RUN/dup timeout 120 "$BIN" serve >"$RUN/dup.out" 2>"$RUN/dup.err" || rc=$?
[ "$rc" = 2 ] || fail "serve with a duplicate intent exited $rc, want 2: $(tail -3 "$RUN/dup.err")"
grep -q "b.yaml:2: duplicate intent 'hog' (already defined in a.yaml)" "$RUN/dup.err" \
    || fail "serve did not name the file and line: $(cat "$RUN/dup.err")"
rc=0
"$BIN" validate "$RUN/dup" >/dev/null 2>"$RUN/validate.err" || rc=$?
[ "$rc" = 1 ] && grep -q "b.yaml:2: duplicate intent 'hog'" "$RUN/validate.err" \
    || fail "validate disagrees (exit $rc): $(cat "$RUN/validate.err")"
pass "a duplicate intent stops serve at start (exit 2) naming file and line; validate agrees"
finish

#!/usr/bin/env bash
# `sio-orchestrator new` in a folder outside the repository: the scaffold
# passes validate, test and run at once; a failing expectation in the spec
# makes `test` fail at the spec's line; new never overwrites.
set -euo pipefail
top=${SIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${SIO_BIN:-$top/build/src/sio-orchestrator}
proj=$(mktemp -d /tmp/sio-new.XXXXXX)
trap 'rm -rf "$proj"' EXIT
cd "$proj"
# a plain environment: nothing points at the repository or the build
unset SIO_BINARY_DIR SIO_SOURCE_DIR LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4 WORKFLOWS_DIR LUA_DIR
passed=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "ok - $*"; }

out=$("$bin" new greet) || fail "new greet: $out"
for f in workflows/greet.yaml lua/greet.lua spec/greet_spec.lua .sio/workflow.schema.json \
         .sio/types/sio.lua .sio/types/sio_testing.lua .luarc.json; do
    [ -s "$f" ] || fail "new greet did not write $f"
done
cmp -s .sio/workflow.schema.json "$top/schema/workflow.schema.json" || fail ".sio/workflow.schema.json is not the shipped schema"
ok "new greet scaffolds the workflow, its step module, its spec and the editor files"

out=$("$bin" validate 2>&1) || fail "validate: $out"
[ "$out" = "ok: greet (workflows/greet.yaml)" ] || fail "validate printed: $out"
ok "the scaffold validates"

out=$("$bin" test 2>&1) || fail "test: $out"
echo "$out" | grep -q "^2 successes / 0 failures / 0 errors" || fail "test printed: $out"
ok "its spec passes under sio-orchestrator test, outside the repository"

out=$("$bin" run greet --attrs '{"query":"hi","name":"Ada"}' 2>/dev/null) || fail "run: $out"
echo "$out" | tail -1 | jq -e '.status == "success" and .result.text == "Hello, Ada! You said: hi"' >/dev/null \
    || fail "run printed: $out"
ok "it runs"

before=$(md5sum workflows/greet.yaml lua/greet.lua spec/greet_spec.lua)
if out=$("$bin" new greet 2>&1); then fail "a second new greet succeeded: $out"; fi
echo "$out" | grep -q "workflows/greet.yaml exists already; nothing was written" || fail "second new printed: $out"
[ "$before" = "$(md5sum workflows/greet.yaml lua/greet.lua spec/greet_spec.lua)" ] || fail "a second new changed files"
ok "new refuses to overwrite, and says so"

# an expectation that fails is a busted failure, at the spec's line
sed -i 's/HELLO, THERE!/HELLO!/; s/r:expect_skipped("shout")/r:expect_ran("shout")/' spec/greet_spec.lua
line=$(grep -n 'r:expect_ran("shout")' spec/greet_spec.lua | cut -d: -f1)
if out=$("$bin" test 2>&1); then fail "test passed with failing expectations: $out"; fi
echo "$out" | grep -q "0 successes / 2 failures / 0 errors" || fail "expected 2 failures, 0 errors: $out"
echo "$out" | grep -q "spec/greet_spec.lua:$line: workflows/greet.yaml:[0-9]*: step shout: expected ok, got skipped" \
    || fail "the failure does not name spec/greet_spec.lua:$line and the step: $out"
ok "a failed expectation is a failure at spec/greet_spec.lua:$line, naming the workflow's line"

echo "$passed passed, 0 failed"

#!/usr/bin/env bash
# The http tool's contract in the daemon's host (libcurl), through
# `sio-orchestrator run` against a local server (tests/authoring/http_server.py):
# the result later steps and templates read (status, every response header,
# body, json), a table body sent as JSON with its Content-Type, a 4xx's body
# in the error, a 429's Retry-After honoured, a per-request timeout.
set -euo pipefail
top=${SIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${SIO_BIN:-$top/build/src/sio-orchestrator}
dir=$(mktemp -d /tmp/sio-http.XXXXXX)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
passed=0
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "ok - $*"; }

/usr/bin/python3 "$top/tests/authoring/http_server.py" >"$dir/port" &
srv_pid=$!
# wait for the port it prints, however long it takes to start (or for it to die)
until [ -s "$dir/port" ]; do kill -0 "$srv_pid" 2>/dev/null || fail "the test server did not start"; sleep 0.1; done
port=$(head -1 "$dir/port")
base="http://127.0.0.1:$port"
export SIO_HTTP_ALLOW="127.0.0.1:$port" # host:port: a bare 127.0.0.1 would allow port 80 only
mkdir -p "$dir/workflows" "$dir/lua"
cd "$dir"
unset WORKFLOWS_DIR LUA_DIR

cat >workflows/calls.yaml <<EOF
intent: calls
steps:
  - id: get
    tool: {name: http, args: {url: "$base/json"}}
  - id: post
    tool:
      name: http
      args: {method: POST, url: "$base/echo", body: {name: "\${A.name}", n: 2}}
  - id: use
    run: |
      return { status = A.get.status, etag = A.get.headers.etag, multi = A.get.headers["x-multi"],
               x = A.get.json.x, ctype = A.post.json.headers["content-type"],
               sent = sio.json.decode(A.post.json.body) }
output:
  status: "\${A.get.status}"
  x: "\${A.get.json.x}"
  ctype: "\${A.get.headers.content-type}"
EOF
cat >workflows/refused.yaml <<EOF
intent: refused
steps:
  - id: create
    tool: {name: http, args: {method: POST, url: "$base/status/422?body=%7B%22error%22%3A%22name+taken%22%7D", body: {a: 1}}}
EOF
cat >workflows/limited.yaml <<EOF
intent: limited
steps:
  - id: call
    tool: {name: http, args: {url: "$base/flaky/\${A.key}?fail=1&code=429&retry_after=1"}}
    retries: 2
EOF
cat >workflows/slow.yaml <<EOF
intent: slow
steps:
  - id: call
    tool: {name: http, args: {url: "$base/hold", timeout: 300ms}}
EOF

out=$("$bin" run calls --attrs '{"name":"Ada"}' 2>"$dir/err") || fail "run calls: $out $(cat "$dir/err")"
echo "$out" | tail -1 | jq -e '.status == "success" and .result.status == 200 and .result.x == 42
    and .result.ctype == "application/json"' >/dev/null || fail "calls printed: $out"
use=$(echo "$out" | tail -1 | jq -c '.result.outputs.use | fromjson')
echo "$use" | jq -e '.status == 200 and .etag == "\"v7\"" and .multi == "a, b" and .x == 42' >/dev/null \
    || fail "A.get is not {status, headers, json}: $use"
ok "later steps and templates read status, every response header (repeated ones joined), body and json"

echo "$use" | jq -e '.ctype == "application/json" and .sent == {"name":"Ada","n":2}' >/dev/null \
    || fail "the table body did not go out as JSON with Content-Type: application/json: $use"
ok "a table body is sent as JSON with Content-Type: application/json"

if out=$("$bin" run refused 2>/dev/null); then fail "a 422 succeeded: $out"; fi
echo "$out" | tail -1 | jq -e '.error.class == "permanent" and .error.step == "create"
    and (.error.message | endswith("status 422: {\"error\":\"name taken\"}"))' >/dev/null \
    || fail "the 422's error: $out"
echo "$out" | tail -1 | grep -qF '\/' && fail "the error escapes slashes: $out"
echo "$out" | tail -1 | grep -qF "http POST $base/status/422" || fail "the error does not name the request: $out"
ok "a 4xx fails permanently with the response body in the error, slashes unescaped"

out=$("$bin" run limited --attrs '{"key":"k1"}' 2>/dev/null) || fail "run limited: $out"
log=$(curl -s "$base/_log")
gap=$(echo "$log" | jq '[.[] | select(.path == "/flaky/k1")] | (.[1].at_ms - .[0].at_ms)')
[ "$(echo "$log" | jq '[.[] | select(.path == "/flaky/k1")] | length')" = 2 ] || fail "expected 2 requests: $log"
awk -v g="$gap" 'BEGIN { exit !(g >= 1000) }' || fail "the retry came ${gap} ms after the 429, before its Retry-After: 1"
ok "a 429 is retried after its Retry-After (${gap%.*} ms later)"

if out=$("$bin" run slow 2>/dev/null); then fail "a held request succeeded: $out"; fi
echo "$out" | tail -1 | jq -e '.error.class == "transient" and (.error.message | test("timed out"))' >/dev/null \
    || fail "the held request's error: $out"
ok "a request past its timeout fails transiently"

echo "$passed passed, 0 failed"

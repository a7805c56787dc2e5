#!/usr/bin/env bash
# Configuration and secrets for workflows in the daemon.  A secret from
# WORKFLOW_SECRETS (a folder, as a Kubernetes Secret volume mounts it) and
# a config value from SIO_CONFIG_API_URL go into an http request to a local
# server (tests/authoring/http_server.py), which records the header and
# echoes it back in its body.  The header arrives as sent; the secret is in
# no log line (LOG_PAYLOADS and debug on), no step result, response, DLQ
# entry (a 401 whose URL and body hold it, a script error quoting it, a
# workflow that does not list it), stored response or `run` output.  A new
# value in the folder reloads with the workflows; the old one stays
# redacted.  An unreadable WORKFLOW_SECRETS stops serve at start (exit 2).
source "$(dirname "$0")/lib.sh"
command -v /usr/bin/python3 >/dev/null || fail "python3 missing: run scripts/setup"

(/usr/bin/python3 "$TOP/tests/authoring/http_server.py" >"$RUN/http.port" & echo $! >"$RUN/http.pid")
for _ in $(seq 1 3000); do [ -s "$RUN/http.port" ] && break; sleep 0.1; done
hport=$(head -1 "$RUN/http.port")
[ -n "$hport" ] || fail "the test server did not start"
server_log() { curl -s "http://127.0.0.1:$hport/_log"; }

wf=$RUN/workflows
mkdir -p "$wf" "$RUN/secrets"
cat >"$wf/callapi.yaml" <<'EOF'
intent: callapi
config: [api_url]
secrets: [api_token]
steps:
  - id: call
    tool:
      name: http
      args:
        method: POST
        url: "${config.api_url}/echo"
        headers: {Authorization: "Bearer ${secret.api_token}"}
        body: {q: "${A.query}"}
    publish_result: true
  - id: note
    run: |
      sio.log("info", "called with " .. sio.secret("api_token"), { token = sio.secret("api_token") })
      return { sent = A.call.json.headers.authorization }
    publish_result: true
output:
  token: "${secret.api_token}"
EOF
cat >"$wf/denied.yaml" <<'EOF'
intent: denied
config: [api_url]
secrets: [api_token]
steps:
  - id: call
    tool: {name: http, args: {url: "${config.api_url}/status/401?body=denied-${secret.api_token}"}}
EOF
cat >"$wf/quoting.yaml" <<'EOF'
intent: quoting
secrets: [api_token]
steps:
  - id: s1
    run: error("the token " .. sio.secret("api_token") .. " was refused")
EOF
cat >"$wf/peek.yaml" <<'EOF'
intent: peek
steps:
  - id: s1
    run: return sio.secret("api_token")
EOF
old=old-tok-$$-$RANDOM/with-slash=
new=new-tok-$$-$RANDOM
printf '%s\n' "$old" >"$RUN/secrets/api_token"
export WORKFLOWS_DIR=$wf WORKFLOW_SECRETS=$RUN/secrets SIO_CONFIG_API_URL=http://127.0.0.1:$hport
export SIO_HTTP_ALLOW='*' LOG_PAYLOADS=true LOG_LEVEL=debug WORKER_COUNT=2 RETRY_ATTEMPTS=1

# clean FILE...: none of the files holds either token.
clean() {
    for f in "$@"; do
        ! grep -n -e "old-tok-$$" -e "new-tok-$$" "$f" || fail "$f holds the secret (lines above)"
    done
}

# 1. The secret reaches the server in the header, and nothing else.
start_service a
out=$(send "s1-$$" callapi '{"query":"hello"}') || fail "callapi: $out"
server_log | jq -e --arg t "Bearer $old" 'any(.path == "/echo" and .headers.authorization == $t)' >/dev/null \
    || fail "the server did not get the header: $(server_log)"
echo "$out" >"$RUN/s1.out"
jq -e -s '.[0].value.status == "step_result" and (.[0].value.result.payload | fromjson | .headers.authorization)
    == "Bearer [redacted:api_token]" and (.[1].value.result.payload | fromjson | .sent) == "Bearer [redacted:api_token]"
    and .[-1].value.status == "success" and .[-1].value.result.token == "[redacted:api_token]"' "$RUN/s1.out" >/dev/null \
    || fail "responses: $out"
redis GET "${DEDUPE_KEY_PREFIX}s1-$$" >"$RUN/stored"
grep -q '\[redacted:api_token\]' "$RUN/stored" || fail "stored response: $(cat "$RUN/stored")"
pass "the secret reaches the server in the Authorization header; step results, the response and the stored response say [redacted:api_token]"

# 2. Dead-lettered: a 401 whose URL and body hold it, an error quoting it,
# a workflow that does not list it.
send "d1-$$" denied '{}' >"$RUN/d1.out" && fail "denied succeeded"
send "q1-$$" quoting '{}' >"$RUN/q1.out" && fail "quoting succeeded"
send "p1-$$" peek '{}' >"$RUN/p1.out" && fail "peek succeeded"
jq -e -s '.[-1].value.error | test("status 401") and test("denied-\\[redacted:api_token\\]")' "$RUN/d1.out" >/dev/null \
    || fail "401 DLQ entry: $(cat "$RUN/d1.out")"
jq -e -s '.[-1].value.error | test("the token \\[redacted:api_token\\] was refused")' "$RUN/q1.out" >/dev/null \
    || fail "script error DLQ entry: $(cat "$RUN/q1.out")"
jq -e -s '.[-1].value.error == "workflow '"'peek'"' may not read secret '"'api_token'"': list it under `secrets:` in peek.yaml"
    and .[-1].value.error_class == "permanent"' "$RUN/p1.out" >/dev/null || fail "peek DLQ entry: $(cat "$RUN/p1.out")"
pass "DLQ entries: the 401's URL and body and the script's error say [redacted:api_token]; an unlisted workflow is refused"

# 3. A new value in the folder reloads with the workflows.
# One line per reload, naming the files the watcher saw change: wait for
# the reload that saw the rename (the .tmp file may have a reload of its
# own, with the old value: hidden files are not read).
seen='"workflows reloaded".*/secrets/api_token"'
reloads=$(grep -c -- "$seen" "$RUN/a.err" || true)
printf '%s\n' "$new" >"$RUN/secrets/.api_token.tmp"
mv "$RUN/secrets/.api_token.tmp" "$RUN/secrets/api_token"
wait_log a "$seen" $((reloads + 1))
out=$(send "s2-$$" callapi '{"query":"again"}') || fail "callapi after the reload: $out"
server_log | jq -e --arg t "Bearer $new" 'any(.headers.authorization == $t)' >/dev/null || fail "the new token was not sent"
pass "a new value in WORKFLOW_SECRETS reloads with the workflows and is sent"

wait_count "$RESPONSES" 4 '.value.status == "step_result"'
messages "$RESPONSES" >"$RUN/responses.jsonl"
messages "$DLQ" >"$RUN/dlq.jsonl"
wait_committed
stop_service a
grep -q '\[redacted:api_token\]' "$RUN/a.err" || fail "the log never mentions the redacted secret"
grep -q '"msg":"called with \[redacted:api_token\]"' "$RUN/a.err" || fail "sio.log's line: $(grep 'called with' "$RUN/a.err")"
clean "$RUN/a.err" "$RUN/responses.jsonl" "$RUN/dlq.jsonl" "$RUN/stored"
pass "neither token is in any log line (LOG_PAYLOADS, debug), response or DLQ entry"

# 4. `run`: the same redaction.
"$BIN" run callapi --attrs '{"query":"cli"}' >"$RUN/run.out" 2>"$RUN/run.err" || fail "run: $(cat "$RUN/run.out" "$RUN/run.err")"
jq -e -s '.[-1].status == "success" and .[-1].result.token == "[redacted:api_token]"' "$RUN/run.out" >/dev/null \
    || fail "run output: $(cat "$RUN/run.out")"
clean "$RUN/run.out" "$RUN/run.err"
pass "run prints [redacted:api_token], never the value"

# 5. An unreadable source stops serve at start, naming it.
rc=0
WORKFLOW_SECRETS=$RUN/nowhere "$BIN" serve >"$RUN/n.out" 2>"$RUN/n.err" || rc=$?
[ $rc = 2 ] && grep -q "WORKFLOW_SECRETS: \"$RUN/nowhere\": No such file or directory" "$RUN/n.err" \
    || fail "WORKFLOW_SECRETS missing: exit $rc: $(tail -2 "$RUN/n.err")"
pass "a WORKFLOW_SECRETS that cannot be read: exit 2, naming it"
finish

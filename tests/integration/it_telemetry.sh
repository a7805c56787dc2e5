#!/usr/bin/env bash
# it_telemetry.sh - the operations endpoints of a real `serve` against the
# dev environment's Kafka, a Redis of its own (so the test can stop it) and
# a real Prometheus server (Debian's package):
#   - /readyz is 503 while the member has not joined its group (held by
#     another member frozen mid-rebalance), 200 once it has;
#   - promtool accepts the exposition; Prometheus scrapes it and its query
#     API returns what the service did: commands received and finished by
#     workflow and outcome (success, duplicate, dlq), dedupe claims and
#     replays, retries by workflow and code, DLQ entries by class, command
#     and step durations; the log has a line per finished command and per
#     retry;
#   - /readyz is 503 while Redis is down and 200 again when it is back;
#   - /healthz is 503 naming the worker when a script wedges it.
. "$(dirname "$0")/lib.sh"

command -v prometheus >/dev/null || fail "prometheus missing: run scripts/setup"
command -v promtool >/dev/null || fail "promtool missing: run scripts/setup"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Our own Redis, which the test stops and starts.
RPORT=$(port)
start_redis() {
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$RUN/redis.log" 2>&1 &
    echo $! >"$RUN/redis.pid"
    for _ in $(seq 1 300); do
        redis-cli -p "$RPORT" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    fail "redis did not start"
}
start_redis

export TOPIC_PARTITIONS=1
export DEDUPE_REDIS_ADDR=127.0.0.1:$RPORT
export OPS_ADDR=127.0.0.1:0
export WORKER_COUNT=1
export OPS_STALL_TIMEOUT=3s
export DEFAULT_WORKFLOW_TIMEOUT=1h
export SIO_INSTR_LIMIT=9000000000000000000

# ops_port NAME: the port a service's listener bound (its "telemetry" line).
ops_port() {
    for _ in $(seq 1 300); do
        local p
        p=$(grep '"msg":"telemetry"' "$RUN/$1.err" 2>/dev/null | jq -r '.ops_port' | head -1)
        [ -n "$p" ] && [ "$p" != null ] && { echo "$p"; return 0; }
        sleep 0.1
    done
    fail "$1 did not report its ops port"
}

# http PORT PATH: "<status> <body>" of GET http://127.0.0.1:PORT/PATH
http() {
    curl -s -o "$RUN/body" -w '%{http_code}' "http://127.0.0.1:$1$2" || echo 000
    echo " $(cat "$RUN/body" 2>/dev/null)"
}

# await PORT PATH PATTERN: GET PATH until "<status> <body>" matches PATTERN
# (a bash glob), for at most 60 s; prints the last answer.  What a test
# expects to become true is waited for: /readyz pings Redis (1 s timeout)
# on every request, and a loaded machine can be slower than that once.
await() {
    local out
    for _ in $(seq 1 600); do
        out=$(http "$1" "$2")
        # shellcheck disable=SC2053
        [[ $out == $3 ]] && break
        sleep 0.1
    done
    echo "$out"
}

# --- readiness before and after joining the group -----------------------------
# A joins and owns the partition; frozen (SIGSTOP) it cannot take part in
# the rebalance B's arrival starts, and with a long session timeout the
# group waits for it: B stays outside the group until A is thawed.
SERVE_ARGS="-X session.timeout.ms=300000" start_service a
A=$(ops_port a)
out=$(await "$A" /readyz '200*')
[[ $out == 200* ]] || fail "a not ready: $out"
pass "a member with partitions is ready"
kill -STOP "$(cat "$RUN/a.pid")"
env "$BIN" serve >"$RUN/b.out" 2>"$RUN/b.err" &
echo $! >"$RUN/b.pid"
B=$(ops_port b)
out=$(http "$B" /readyz)
[[ $out == 503* ]] || fail "b answered $out before joining"
echo "$out" | grep -q '"kafka":{"ok":false' || fail "b's readiness does not name kafka: $out"
pass "/readyz is 503 before the group is joined"
kill -CONT "$(cat "$RUN/a.pid")"
for _ in $(seq 1 600); do
    grep -q '"partitions assigned"' "$RUN/b.err" && break
    sleep 0.1
done
out=$(await "$B" /readyz '200*')
[[ $out == 200* ]] || fail "b not ready after joining: $out"
pass "/readyz is 200 once joined (with or without partitions)"
stop_service b

# --- metrics: promtool and a real Prometheus ------------------------------------
curl -s "http://127.0.0.1:$A/metrics" >"$RUN/metrics.txt"
promtool check metrics <"$RUN/metrics.txt" >"$RUN/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$RUN/promtool.out")"
pass "promtool check metrics accepts the exposition"

PPORT=$(port)
cat >"$RUN/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: sio
    static_configs:
      - targets: ["127.0.0.1:$A"]
YAML
prometheus --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/prom" \
    --web.listen-address="127.0.0.1:$PPORT" >"$RUN/prometheus.log" 2>&1 &
echo $! >"$RUN/prometheus.pid"

for i in 1 2 3 4 5; do send "tel-$i" noop '{"query":"q"}' >/dev/null || fail "command $i failed"; done
send tel-1 noop '{"query":"q"}' >/dev/null || fail "the duplicate of tel-1 got no answer"
"$BIN" send nosuch --correlation-id tel-dlq --wait 60s >"$RUN/dlq.out" 2>&1 &&
    fail "a command for an unknown workflow succeeded: $(cat "$RUN/dlq.out")"
grep -q '"status":"error"' "$RUN/dlq.out" || fail "no DLQ entry for the unknown workflow: $(cat "$RUN/dlq.out")"
# flaky fails transiently once, then succeeds: one retry
send tel-flaky flaky "{\"id\":\"tel-$$\",\"ok_on\":2}" >/dev/null || fail "flaky did not succeed on its retry"

# query EXPR WANT: until Prometheus' instant query of EXPR returns WANT.
query() {
    local got=""
    for _ in $(seq 1 600); do
        got=$(curl -s "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
            jq -r '.data.result[0].value[1] // empty' 2>/dev/null)
        [ "$got" = "$2" ] && return 0
        sleep 0.2
    done
    fail "prometheus: $1 = '$got', want $2"
}
query 'sio_partitions_assigned{job="sio"}' 1
query 'sio_workflows_loaded{job="sio"} > 0' "$(jq -r '.workflows | length' <(curl -s "http://127.0.0.1:$A/workflows"))"
query 'up{job="sio"}' 1
# every command claims and stores its correlation id: Redis answered them
query 'sio_redis_request_duration_seconds_count{job="sio"} >= bool 10' 1
query 'sio_redis_errors_total{job="sio"}' 0
# the commands, by workflow and outcome
query 'sio_commands_received_total{job="sio",workflow="noop"}' 6
query 'sio_commands_finished_total{job="sio",workflow="noop",outcome="success"}' 5
query 'sio_commands_finished_total{job="sio",workflow="noop",outcome="duplicate"}' 1
query 'sio_commands_received_total{job="sio",workflow="unknown"}' 1
query 'sio_commands_finished_total{job="sio",workflow="unknown",outcome="dlq"}' 1
query 'sio_dlq_messages_total{job="sio",class="permanent"}' 1
query 'sio_dlq_messages_total{job="sio",class="transient"}' 0
query 'sio_commands_finished_total{job="sio",workflow="flaky",outcome="success"}' 1
query 'sio_command_retries_total{job="sio",workflow="flaky",code="transient"}' 1
query 'sio_dedupe_claims_total{job="sio"}' 6
query 'sio_dedupe_replays_total{job="sio"}' 1
query 'sio_command_duration_seconds_count{job="sio",workflow="noop"}' 6
query 'sio_step_duration_seconds_count{job="sio",workflow="noop",step="s1"}' 5
query 'sio_step_duration_seconds_count{job="sio",workflow="flaky",step="try"}' 2
query 'sio_commands_in_flight{job="sio"}' 0
pass "prometheus scrapes /metrics and its API returns what the service did"

# A line per finished command (with its outcome, attempts and trace) and
# one per retry.
finished=$(grep '"msg":"command finished"' "$RUN/a.err")
[ "$(grep -c . <<<"$finished")" = 8 ] || fail "want 8 'command finished' lines: $finished"
jq -e -s 'map(select(.correlation_id == "tel-flaky")) | length == 1 and .[0].outcome == "success"
    and .[0].attempts == 2 and .[0].workflow == "flaky" and (.[0].trace_id | test("^[0-9a-f]{32}$"))
    and (.[0].duration_ms > 0)' <<<"$finished" >/dev/null || fail "tel-flaky's finished line: $finished"
jq -e -s 'map(select(.correlation_id == "tel-dlq")) | .[0].outcome == "dlq"' <<<"$finished" >/dev/null ||
    fail "tel-dlq's finished line: $finished"
grep '"msg":"transient failure; retrying"' "$RUN/a.err" | jq -e 'select(.correlation_id == "tel-flaky")
    | .level == "warn" and .attempt == 1' >/dev/null || fail "no retry line for tel-flaky"
pass "one log line per finished command and per retry"

# The Grafana dashboard's queries are valid PromQL over metrics we expose.
jq -r '.panels[].targets[].expr' "$TOP/docs/grafana-dashboard.json" | sed 's/\$job/sio/g' |
while IFS= read -r expr; do
    st=$(curl -s "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$expr" | jq -r .status)
    [ "$st" = success ] || fail "dashboard query rejected by prometheus: $expr"
    for m in $(echo "$expr" | grep -o 'sio_[a-z_]*' | sed 's/_bucket$//'); do
        grep -q "^# TYPE $m " "$RUN/metrics.txt" || fail "dashboard uses $m, which /metrics does not have"
    done
done
pass "every dashboard query is valid PromQL over exposed metrics"

# --- readiness while Redis is down ---------------------------------------------
kill "$(cat "$RUN/redis.pid")"
wait "$(cat "$RUN/redis.pid")" 2>/dev/null || true
out=$(http "$A" /readyz)
[[ $out == 503* ]] || fail "ready with Redis down: $out"
echo "$out" | grep -q '"redis":{"ok":false' || fail "readiness does not name redis: $out"
start_redis
out=$(await "$A" /readyz '200*')
[[ $out == 200* ]] || fail "not ready with Redis back: $out"
pass "/readyz is 503 while Redis is down, 200 when it is back"

# --- liveness: a wedged worker ---------------------------------------------------
# spin (workflows/spin.lua) loops forever; with SIO_INSTR_LIMIT at its
# maximum (above) nothing kills it, so worker-0 stops turning.
[ -n "$(curl -s "http://127.0.0.1:$A/workflows" | jq -r '.workflows[] | select(.intent == "spin") | .sha256')" ] ||
    fail "/workflows does not list spin"
"$BIN" send spin --correlation-id tel-spin --wait 1s >/dev/null 2>&1 || true
# (another thread of a loaded machine may be late too: worker-0 must be
# among those named)
out=$(await "$A" /healthz '503*"wedged":\[*"worker-0"*')
[[ $out == 503* ]] || fail "healthz not 503 with a wedged worker: $out"
echo "$out" | grep -q '"wedged":\[[^]]*"worker-0"' || fail "healthz does not name worker-0: $out"
pass "/healthz is 503 naming the wedged worker"
kill9_service a
finish

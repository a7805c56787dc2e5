#!/usr/bin/env bash
# serve started before its Redis or Kafka (as under docker compose or
# Kubernetes) waits for them, logging what it waits for, and serves once
# they answer; with a short STARTUP_TIMEOUT it exits 1 naming what did not
# answer; a Redis that answers with a refusal (NOAUTH) ends it at once; an
# invalid workflow set ends it with exit 2 before anything is waited for.
# Redis here is one of the test's own on a free port, started only after
# serve logged that it waits; "Kafka down" is a port where nothing listens
# until the test starts a TCP relay (socat) to the dev environment's broker.
source "$(dirname "$0")/lib.sh"
command -v socat >/dev/null || fail "socat missing: run scripts/setup"

rdir="$RUN/redis"
mkdir -p "$rdir"
rport=$(free_port)
redis_start() {
    redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no --dir "$rdir" \
        --daemonize yes --pidfile "$rdir/pid" --logfile "$rdir/log" "$@" >/dev/null
}
# redis_stop: stops the test's Redis and returns once its port is closed, so
# what follows sees Redis down whatever the machine's speed.
redis_stop() {
    [ -f "$rdir/pid" ] || return 0
    local pid
    pid=$(cat "$rdir/pid")
    rm -f "$rdir/pid"
    kill "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}
# cleanup (lib.sh) reports and exits with the status it finds in $?.
trap 'st=$?; redis_stop; (exit $st); cleanup' EXIT

# serve_bg NAME VAR=value...: serve in the background, not waiting for it.
serve_bg() {
    local name=$1
    shift
    env "$@" "$BIN" serve >"$RUN/$name.out" 2>"$RUN/$name.err" &
    echo $! >"$RUN/$name.pid"
}
# wait_log NAME TEXT: until the service's log has TEXT (it must not exit).
wait_log() {
    for _ in $(seq 1 1200); do
        grep -q "$2" "$RUN/$1.err" && return 0
        kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null || fail "$1 exited waiting for $2: $(tail -3 "$RUN/$1.err")"
        sleep 0.1
    done
    fail "$1 did not log $2 within 120 s: $(tail -3 "$RUN/$1.err")"
}
# ended NAME: waits for the service to end; its exit code lands in $rc.
ended() {
    rc=0
    wait "$(cat "$RUN/$1.pid")" || rc=$?
    rm -f "$RUN/$1.pid"
}

# 1. Redis comes up after serve started.
serve_bg r DEDUPE_REDIS_ADDR=127.0.0.1:$rport STARTUP_TIMEOUT=10m
wait_log r '"msg":"waiting for redis"'
grep '"waiting for redis"' "$RUN/r.err" | head -1 | jq -e --arg a "127.0.0.1:$rport" \
    '.level == "warn" and .address == $a and (.error | test("did not answer")) and .retry_in_ms >= 0
     and .startup_timeout_ms == 600000' >/dev/null || fail "waiting line: $(grep waiting "$RUN/r.err" | head -1)"
redis_start
wait_log r '"msg":"redis answered"'
wait_log r '"partitions assigned"'
out=$(DEDUPE_REDIS_ADDR=127.0.0.1:$rport send "late-redis-$$" noop '{"query":"hello"}') \
    || fail "command after Redis came up: $out"
jq -e -s '.[0].value.status == "step_result" and .[-1].value.status == "success"' <<<"$out" >/dev/null \
    || fail "command after Redis came up: $out"
stop_service r
pass "serve started before Redis waits, logs it, and serves once Redis answers"

# 2. Kafka comes up after serve started (bootstrap through a relay that
# starts later; the broker then advertises its own address).
kport=$(free_port)
serve_bg k KAFKA_BROKERS=127.0.0.1:$kport DEDUPE_REDIS_ADDR=127.0.0.1:$rport STARTUP_TIMEOUT=10m
wait_log k '"msg":"waiting for kafka"'
grep -q '"waiting for redis"' "$RUN/k.err" && fail "waited for Redis, which was up"
socat "TCP-LISTEN:$kport,bind=127.0.0.1,reuseaddr,fork" "TCP:$KAFKA_BROKERS" 2>"$RUN/socat.log" &
echo $! >"$RUN/socat.pid"
wait_log k '"msg":"kafka answered"'
wait_log k '"partitions assigned"'
out=$(DEDUPE_REDIS_ADDR=127.0.0.1:$rport send "late-kafka-$$" noop '{"query":"hello"}') \
    || fail "command after Kafka came up: $out"
jq -e -s '.[-1].value.status == "success"' <<<"$out" >/dev/null || fail "command after Kafka came up: $out"
stop_service k
kill "$(cat "$RUN/socat.pid")" && rm -f "$RUN/socat.pid"
pass "serve started before Kafka waits, logs it, and serves once Kafka answers"

# 3. Neither comes up within a short STARTUP_TIMEOUT: exit 1, naming both.
redis_stop
dead=$(free_port)
serve_bg t KAFKA_BROKERS=127.0.0.1:$dead DEDUPE_REDIS_ADDR=127.0.0.1:$rport STARTUP_TIMEOUT=3s
ended t
[ $rc = 1 ] || fail "exit code $rc with nothing answering"
last=$(grep -v '^{' "$RUN/t.err" | tail -1)
[[ $last == *"STARTUP_TIMEOUT (3000 ms) passed"* && $last == *"redis at 127.0.0.1:$rport did not answer"* \
    && $last == *"kafka brokers 127.0.0.1:$dead did not answer"* ]] || fail "timeout message: $last"
pass "STARTUP_TIMEOUT=3s with Kafka and Redis down: exit 1 naming both ($last)"

serve_bg t2 DEDUPE_REDIS_ADDR=127.0.0.1:$rport STARTUP_TIMEOUT=2s
ended t2
[ $rc = 1 ] || fail "exit code $rc with Redis down"
last=$(grep -v '^{' "$RUN/t2.err" | tail -1)
[[ $last == *"redis at 127.0.0.1:$rport"* && $last != *kafka* ]] || fail "Redis-only timeout message: $last"
pass "STARTUP_TIMEOUT=2s with only Redis down: exit 1 naming Redis alone"

# 4. A Redis that refuses (a password is required, none is configured):
# no waiting, exit 1 with Redis's answer.
redis_start --requirepass "it-$$"
serve_bg n DEDUPE_REDIS_ADDR=127.0.0.1:$rport STARTUP_TIMEOUT=10m
ended n
[ $rc = 1 ] || fail "exit code $rc when Redis refuses"
grep -q '"waiting for redis"' "$RUN/n.err" && fail "waited for a Redis that refused"
last=$(grep -v '^{' "$RUN/n.err" | tail -1)
[[ $last == *"redis at 127.0.0.1:$rport refused PING: NOAUTH"* ]] || fail "refusal message: $last"
pass "Redis refusing (NOAUTH) ends start-up at once with exit 1: $last"

# 5. An invalid workflow set is a configuration error found before anything
# is waited for: exit 2 naming file:line, with Kafka and Redis both down
# and a STARTUP_TIMEOUT that would otherwise keep it waiting.
mkdir -p "$RUN/badwf"
printf 'intent: bad\nsteps:\n  - id: s1\n    guard: "A.x =="\n    tool: {name: echo}\n' \
    >"$RUN/badwf/bad.yaml"
redis_stop
serve_bg w KAFKA_BROKERS=127.0.0.1:$dead DEDUPE_REDIS_ADDR=127.0.0.1:$rport STARTUP_TIMEOUT=10m \
    WORKFLOWS_DIR="$RUN/badwf"
ended w
[ $rc = 2 ] || fail "exit code $rc for an invalid workflow set"
grep -q '"waiting for' "$RUN/w.err" && fail "waited for Kafka/Redis before checking the workflows"
grep -q 'bad.yaml:4: step s1: invalid guard' "$RUN/w.err" || fail "no file:line in: $(tail -3 "$RUN/w.err")"
pass "an invalid workflow set exits 2 naming file:line before waiting for Kafka or Redis"
finish

#!/usr/bin/env bash
# Redis stopped mid-run: a command is retried (transient) and succeeds once
# Redis is back; with Redis staying down it is dead-lettered as transient
# after the configured attempts.  Uses a Redis of its own so the shared one
# keeps serving the other tests.
source "$(dirname "$0")/lib.sh"
port=$(( 40000 + RANDOM % 20000 ))
rdir="$RUN/redis"
mkdir -p "$rdir"
redis_start() {
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$rdir" \
        --daemonize yes --pidfile "$rdir/pid" --logfile "$rdir/log" >/dev/null
    for _ in $(seq 1 50); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    fail "own redis did not start"
}
redis_stop() { redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; sleep 0.2; }
trap 'redis_stop; cleanup' EXIT
redis_start
export DEDUPE_REDIS_ADDR=127.0.0.1:$port

# Retried and recovered.
start_service a RETRY_ATTEMPTS=30 RETRY_BACKOFF_BASE=100ms RETRY_BACKOFF_MAX=500ms
send warm-$$ noop '{"query":"warm"}' >/dev/null || fail "warm-up command failed"
redis_stop
send back-$$ noop '{"query":"comes back"}' >"$RUN/back.out" &
sender=$!
sleep 2
redis_start
wait $sender || fail "command did not succeed after Redis came back: $(cat "$RUN/back.out")"
jq -e -s '.[-1].value.status == "success" and .[-1].value.correlation_id == "back-'$$'"' "$RUN/back.out" >/dev/null \
    || fail "after Redis came back: $(cat "$RUN/back.out")"
grep -q '"transient failure; retrying"' "$RUN/a.err" || fail "no retry was logged"
[[ "$(redis-cli -p "$port" GET "${DEDUPE_KEY_PREFIX}back-$$")" == done:* ]] || fail "response not stored after recovery"
messages "$DLQ" | jq -e -s 'all(.key != "back-'$$'")' >/dev/null || fail "recovered command also went to the DLQ"
pass "Redis stopped mid-run: the command was retried and succeeded when Redis returned"
stop_service a

# Stays down: dead-lettered, class transient, after RETRY_ATTEMPTS attempts.
start_service b RETRY_ATTEMPTS=3 RETRY_BACKOFF_BASE=100ms RETRY_BACKOFF_MAX=300ms
redis_stop
out=$(send down-$$ noop '{"query":"never"}') && fail "succeeded with Redis down: $out"
echo "$out" | jq -e -s '.[-1].topic == env.KAFKA_RESPONSES_TOPIC + ".dlq" and .[-1].value.error_class == "transient"
    and .[-1].value.attempts == 3 and (.[-1].value.error | test("redis"))
    and .[-1].value.command.attrs.query == "never"' >/dev/null || fail "Redis down: $out"
pass "Redis staying down: dead-lettered as transient after 3 attempts, original command kept"
redis_start
wait_committed
stop_service b
finish

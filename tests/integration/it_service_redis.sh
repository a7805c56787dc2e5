#!/usr/bin/env bash
# Redis going away while the service runs, with a Redis of its own (the
# shared one keeps serving the other tests):
#   1. a command that meets Redis down is retried (transient) and succeeds
#      once Redis is back;
#   2. a 10 s outage (shutdown nosave, then a new redis-server on the same
#      port) under load - commands waiting inside their workflow, commands
#      arriving meanwhile - costs nothing: the service reconnects on its
#      own, logs the outage and the recovery once, every command gets its
#      success, a new command right after is answered, offsets commit;
#   3. with Redis staying down a command is dead-lettered as transient
#      after RETRY_ATTEMPTS attempts.
source "$(dirname "$0")/lib.sh"
# A free port below the kernel's ephemeral range (32768-60999 here), so no
# outgoing connection takes it as its local port while Redis is stopped
# and the restart on the same port cannot find it in use; and below the
# 20000-39999 the dev environments pick from.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
for _ in $(seq 1 200); do
    port=$(( 10000 + RANDOM % 10000 ))
    [ "$port" -lt "$low" ] && ! port_open "$port" && break
done
rdir="$RUN/redis"
mkdir -p "$rdir"
redis_start() {
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$rdir" \
        --daemonize yes --pidfile "$rdir/pid" --logfile "$rdir/log" >/dev/null
    for _ in $(seq 1 300); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    fail "own redis did not start on $port: $(tail -5 "$rdir/log" 2>/dev/null)"
}
# shutdown nosave, then until the server is gone (its port answers no more).
redis_stop() {
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 300); do
        redis-cli -p "$port" ping >/dev/null 2>&1 || return 0
        sleep 0.1
    done
    fail "own redis did not stop"
}
redis_down() { redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; }
EXIT_HOOKS+=(redis_down) # not a trap of its own: that would lose the exit status
redis_start
export DEDUPE_REDIS_ADDR=127.0.0.1:$port
gate_start

# 1. Retried and recovered.
start_service a RETRY_ATTEMPTS=30 RETRY_BACKOFF_BASE=100ms RETRY_BACKOFF_MAX=500ms
send warm-$$ noop '{"query":"warm"}' >/dev/null || fail "warm-up command failed"
redis_stop
send back-$$ noop '{"query":"comes back"}' >"$RUN/back.out" &
sender=$!
wait_log a '"transient failure; retrying"'
redis_start
wait $sender || fail "command did not succeed after Redis came back: $(cat "$RUN/back.out")"
jq -e -s '.[-1].value.status == "success" and .[-1].value.correlation_id == "back-'$$'"' "$RUN/back.out" >/dev/null \
    || fail "after Redis came back: $(cat "$RUN/back.out")"
[[ "$(redis-cli -p "$port" GET "${DEDUPE_KEY_PREFIX}back-$$")" == done:* ]] || fail "response not stored after recovery"
wait_committed
messages "$DLQ" | jq -e -s 'all(.key != "back-'$$'")' >/dev/null || fail "recovered command also went to the DLQ"
pass "Redis stopped mid-run: the command was retried and succeeded when Redis returned"
stop_service a

# 2. A 10 s outage under load.  Retries span the outage: 12 attempts with
# backoff from 500 ms to 4 s wait at least ~17 s in all.
start_service c RETRY_ATTEMPTS=12 RETRY_BACKOFF_BASE=500ms RETRY_BACKOFF_MAX=4s
N1=100 N2=100
for i in $(seq 1 $N1); do
    echo '{"correlation_id":"held-'$$'-'$i'","workflow":"counted","attrs":{"id":"held-'$$'-'$i'","gate":"'"$GATE"'"}}'
done >"$RUN/held.jsonl"
for i in $(seq 1 $N2); do
    echo '{"correlation_id":"during-'$$'-'$i'","workflow":"noop","attrs":{"query":"'$i'"}}'
done >"$RUN/during.jsonl"
"$BIN" send --lines "$RUN/held.jsonl" >/dev/null
gate_wait held $N1                     # claimed in Redis, waiting inside the workflow
redis_stop
wait_log c '"redis unavailable: reconnecting"'
"$BIN" send --lines "$RUN/during.jsonl" >/dev/null
gate open >/dev/null                   # the held ones go on into a Redis that is down
sleep 10                               # the outage itself (not a wait for anything)
redis_start
wait_count "$RESPONSES" $((N1 + N2)) '(.key | test("^(held|during)-'$$'-")) and .value.status == "success"'
wait_log c '"redis connection restored"'
[ "$(grep -c '"redis unavailable: reconnecting"' "$RUN/c.err")" = 1 ] \
    || fail "the outage was logged $(grep -c '"redis unavailable' "$RUN/c.err") times, want once"
[ "$(grep -c '"redis connection restored"' "$RUN/c.err")" = 1 ] || fail "the recovery was not logged once"
out=$(send after-$$ noop '{"query":"after"}' --wait 30s) || fail "a new command after the outage: $out"
echo "$out" | jq -e -s '.[-1].value.status == "success"' >/dev/null || fail "after the outage: $out"
[ "$(redis-cli -p "$port" CLIENT LIST | wc -l)" -ge 2 ] || fail "no connection from the service: $(redis-cli -p "$port" CLIENT LIST)"
wait_committed
messages "$DLQ" | jq -e -s 'all(.key | test("^(held|during|after)-'$$'") | not)' >/dev/null \
    || fail "dead-lettered during the outage: $(messages "$DLQ" | head -3)"
pass "a 10 s Redis outage under load: reconnected by itself, logged once each way, all $((N1 + N2)) commands succeeded, the next one too"
stop_service c

# 3. Stays down: dead-lettered, class transient, after RETRY_ATTEMPTS attempts.
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

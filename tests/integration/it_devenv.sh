#!/usr/bin/env bash
# The dev environment's lifecycle, in a scratch state folder of its own:
# `up` starts Kafka and Redis that answer (and the broker's secured
# listeners, with keys only the owner reads), a second `up` changes
# nothing, `env` prints the addresses, and `down` leaves no process and no
# data.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SIO_DEVENV_DIR
SIO_DEVENV_DIR=$(mktemp -d /tmp/sio-devenv-test.XXXXXX)
fail() { echo "FAIL: $*" >&2; "$top/scripts/devenv" down >/dev/null 2>&1 || true; exit 1; }

"$top/scripts/devenv" up 2>/dev/null
envs=$("$top/scripts/devenv" env)
echo "$envs"
brokers=$(sed -n 's/^export KAFKA_BROKERS=//p' <<<"$envs")
redis=$(sed -n 's/^export DEDUPE_REDIS_ADDR=//p' <<<"$envs")
[[ $brokers =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "KAFKA_BROKERS='$brokers'"
[[ $redis =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "DEDUPE_REDIS_ADDR='$redis'"
[ "$(redis-cli -h 127.0.0.1 -p "${redis#*:}" ping)" = PONG ] || fail "redis does not answer"
(exec 3<>"/dev/tcp/127.0.0.1/${brokers#*:}") || fail "kafka port closed"
kpid=$(cat "$SIO_DEVENV_DIR/kafka.pid")
rpid=$(cat "$SIO_DEVENV_DIR/redis.pid")
# The secured listeners, and their keys and passwords readable by the owner only.
for v in SIO_DEVENV_KAFKA_SASL_SSL SIO_DEVENV_KAFKA_MTLS; do
    a=$(sed -n "s/^export $v=//p" <<<"$envs")
    [[ $a =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "$v='$a'"
    (exec 3<>"/dev/tcp/127.0.0.1/${a#*:}") || fail "$v port closed"
done
tls=$(sed -n 's/^export SIO_DEVENV_TLS=//p' <<<"$envs")
[ "$(stat -c %a "$tls")" = 700 ] || fail "$tls is not 0700"
for f in "$tls"/*.key "$tls"/*.pass "$tls"/*.conf "$tls"/broker.p12 "$SIO_DEVENV_DIR/kafka/server.properties"; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f is not 0600"
done
openssl verify -CAfile "$tls/ca.pem" "$tls/broker.pem" "$tls/client.pem" >/dev/null || fail "certificates do not verify"
# No persistence configured for Redis.
[ "$(redis-cli -p "${redis#*:}" config get save | sed -n 2p)" = "" ] || fail "redis persists"

"$top/scripts/devenv" up 2>/dev/null
[ "$("$top/scripts/devenv" env)" = "$envs" ] || fail "second up changed the environment"
[ "$(cat "$SIO_DEVENV_DIR/kafka.pid")" = "$kpid" ] || fail "second up restarted kafka"

"$top/scripts/devenv" down
kill -0 "$kpid" 2>/dev/null && fail "kafka ($kpid) still runs after down"
kill -0 "$rpid" 2>/dev/null && fail "redis ($rpid) still runs after down"
pgrep -f "$SIO_DEVENV_DIR" >/dev/null && fail "a process still uses $SIO_DEVENV_DIR"
[ -e "$SIO_DEVENV_DIR" ] && fail "$SIO_DEVENV_DIR still exists after down"
"$top/scripts/devenv" env >/dev/null 2>&1 && fail "env succeeds after down"
echo "1 passed, 0 failed"

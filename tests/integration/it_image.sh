#!/usr/bin/env bash
# The container image, built and run without a Docker engine: docker/base
# makes the Debian base images (cached in .cache/images/), buildah builds
# docker/Dockerfile, and the image's own default command (its ENTRYPOINT +
# CMD, as configured) serves the seed's sample flow against the dev
# environment's Kafka and Redis over the host network.  Also: the runtime
# image has no compiler and no -dev package, runs as a non-root user,
# carries the OCI labels and a HEALTHCHECK that passes while it serves and
# fails when Kafka does not answer, and a folder mounted over
# /etc/sio/workflows replaces the baked workflows.  SIGTERM ends it with 0.
# Skipped (exit 77) only where buildah, podman or debootstrap is missing.
source "$(dirname "$0")/lib.sh"
for tool in buildah podman debootstrap; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (scripts/setup installs buildah, podman and debootstrap); the image was not built"
        exit 77
    fi
done
IMAGE=localhost/sio-orchestrator:it
ctr=""
img_cleanup() {
    [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1
    # Untagged layers of earlier builds: keep a day's worth as build cache.
    podman image prune -f --filter until=24h >/dev/null 2>&1 || true
}
# cleanup (lib.sh) reports and exits with the status it finds in $?.
trap 'st=$?; img_cleanup; (exit $st); cleanup' EXIT
secs() { echo "$(( $(date +%s%N) / 1000000 ))"; }

t0=$(secs)
mapfile -t bases < <("$TOP/docker/base")
t1=$(secs)
revision=$(git -C "$TOP" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
version=$("$TOP/scripts/version")
# The revision and date also go in as --label: buildah 1.28's layer cache
# reuses a cached LABEL step whatever the build arguments now say.
buildah bud --isolation=chroot --layers --format docker --pull=never \
    --build-arg BASE="${bases[0]}" --build-arg RUNTIME_BASE="${bases[1]}" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.created="$created" \
    -t "$IMAGE" -f "$TOP/docker/Dockerfile" "$TOP" >"$RUN/build.log" 2>&1 \
    || { tail -40 "$RUN/build.log" >&2; fail "buildah bud failed"; }
t2=$(secs)
size=$(podman image inspect "$IMAGE" | jq '.[0].Size')
echo "# base images $(( (t1 - t0) / 1000 )) s, build $(( (t2 - t1) / 1000 )) s, image $(( size / 1000000 )) MB"
pass "docker/Dockerfile builds ($(( size / 1000000 )) MB)"

config=$(buildah inspect --type image "$IMAGE" | jq '.Docker.config')
jq -e --arg rev "$revision" --arg ver "$version" '.User == "10001:10001" and .Healthcheck.Test[0] == "CMD"
    and (.Labels["org.opencontainers.image.title"] == "sio-orchestrator")
    and (.Labels["org.opencontainers.image.revision"] == $rev)
    and (.Labels["org.opencontainers.image.licenses"] == "Apache-2.0")
    and (.Labels["org.opencontainers.image.version"] == $ver)' \
    <<<"$config" >/dev/null || fail "image configuration: $config"
pass "non-root user, HEALTHCHECK and OCI labels in the image configuration"

ctr=$(buildah from --pull=never "$IMAGE")
inside() { buildah run --isolation=chroot "$@"; }
[ "$(inside "$ctr" -- id -u)" = 10001 ] || fail "the image runs as uid $(inside "$ctr" -- id -u)"
[ "$(inside "$ctr" -- /opt/sio/bin/sio-orchestrator version)" = "sio-orchestrator $version" ] \
    || fail "the label says $version, the binary: $(inside "$ctr" -- /opt/sio/bin/sio-orchestrator version)"
found=$(inside "$ctr" -- sh -c 'for t in cc gcc g++ c++ ld make cmake ninja pkg-config; do
    command -v $t; done; dpkg-query -W -f "\${Package}\n" | grep -- "-dev$"; ls /usr/include 2>/dev/null | head -3' || true)
[ -z "$found" ] || fail "build tools or -dev packages in the runtime image: $found"
pass "runtime image: uid 10001, no compiler, no -dev package, no headers"

# The image's default command, exactly as configured, with the dev
# environment's Kafka and Redis and this test's topics in the environment.
mapfile -t cmd < <(jq -r '(.Entrypoint // []) + (.Cmd // []) | .[]' <<<"$config")
[ "${cmd[*]}" = "/opt/sio/bin/sio-orchestrator serve" ] || fail "default command: ${cmd[*]}"
envs=()
for v in KAFKA_BROKERS DEDUPE_REDIS_ADDR KAFKA_COMMANDS_TOPIC KAFKA_RESPONSES_TOPIC KAFKA_GROUP_ID \
    DEDUPE_KEY_PREFIX TOPIC_PARTITIONS DRAIN_TIMEOUT; do
    envs+=(-e "$v=${!v}")
done
inside "${envs[@]}" "$ctr" -- "${cmd[@]}" >"$RUN/image.out" 2>"$RUN/image.err" &
runner=$!
for _ in $(seq 1 900); do
    grep -q '"partitions assigned"' "$RUN/image.err" && break
    kill -0 $runner 2>/dev/null || fail "the image's serve exited: $(tail -5 "$RUN/image.err")"
    sleep 0.2
done
grep -q '"partitions assigned"' "$RUN/image.err" || fail "the image's serve got no partitions in 180 s"
out=$(send "img-$$" noop '{"query":"hello"}') || fail "sample flow through the image: $out"
jq -e -s --arg cid "img-$$" 'length == 2 and all(.key == $cid and .value.correlation_id == $cid)
    and .[0].value.status == "step_result" and .[0].value.result.step_id == "s1"
    and .[0].value.result.query == "hello" and .[1].value.status == "success"' <<<"$out" >/dev/null \
    || fail "sample flow through the image: $out"
pass "the image's default command serves the sample flow: step_result, then success"

inside "${envs[@]}" "$ctr" -- /opt/sio/bin/sio-healthcheck \
    || fail "HEALTHCHECK fails while the service serves"
inside "${envs[@]}" -e KAFKA_BROKERS=127.0.0.1:1 "$ctr" -- /opt/sio/bin/sio-healthcheck 2>/dev/null \
    && fail "HEALTHCHECK passes with no broker at 127.0.0.1:1"
pass "HEALTHCHECK passes while serving and fails when Kafka does not answer"

# SIGTERM to the serve process inside: drains and exits 0 through buildah.
kids() { local p; for p in $(pgrep -P "$1"); do echo "$p"; kids "$p"; done; }
srv=""
for p in $(kids $runner); do
    [[ "$(ps -o args= -p "$p")" == /opt/sio/bin/sio-orchestrator* ]] && srv=$p
done
[ -n "$srv" ] || fail "no serve process under buildah run ($runner)"
kill -TERM "$srv"
rc=0
wait $runner || rc=$?
[ $rc = 0 ] || fail "the image's serve exited $rc after SIGTERM: $(tail -3 "$RUN/image.err")"
grep -q '"msg":"stopped"' "$RUN/image.err" || fail "no 'stopped' line after SIGTERM"
pass "SIGTERM: the image's serve drains and exits 0"

# A folder mounted over /etc/sio/workflows replaces the baked workflows.
mnt="$RUN/workflows"
mkdir -p "$mnt"
cat >"$mnt/mounted.yaml" <<'YAML'
intent: mounted
steps:
  - id: m1
    tool: {name: echo, args: {query: "mounted ${A.query}"}}
YAML
chmod 755 "$RUN" "$mnt" && chmod 644 "$mnt/mounted.yaml"
out=$(inside -v "$mnt:/etc/sio/workflows:ro" "$ctr" -- /opt/sio/bin/sio-orchestrator run mounted \
    --attrs '{"query":"yes"}' 2>&1) || fail "run from the mounted folder: $out"
grep -q 'mounted yes' <<<"$out" || fail "run from the mounted folder: $out"
out=$(inside -v "$mnt:/etc/sio/workflows:ro" "$ctr" -- /opt/sio/bin/sio-orchestrator run noop \
    --attrs '{"query":"x"}' 2>&1) && fail "the baked noop is still there under the mount: $out"
pass "a folder mounted over /etc/sio/workflows replaces the baked workflows"
finish

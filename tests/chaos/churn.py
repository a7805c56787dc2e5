#!/usr/bin/env python3
"""churn.py - three service instances in one group under churn (issue 13).

Three `serve` processes share a consumer group on a 12-partition commands
topic.  Commands of the `churn` workflow (tests/chaos/workflows/churn.lua:
each execution counts itself and records who ran it in Redis, then works
0-500 ms) are sent in batches while, on a fixed schedule, a random instance
is killed with SIGKILL every --kill-every seconds and started again at once,
the Kafka broker is restarted once and Redis once (scripts/devenv restart,
in place: same ports, same data).  Then the test waits for what it checks -
every outcome on the topics, the group's committed offsets - and checks,
from the topics and Redis only (never from logs):

  * every command has a final outcome: a success on the responses topic, or
    a DLQ entry of class transient (a fault outlasted its retries);
  * no command was executed twice unless the process running it was killed
    before it finished and another one took it over (its lease expired),
    or its own process retried it after a transient failure; the count of
    each is reported;
  * committed offsets equal end offsets on every partition;
  * no instance is stuck: each member of the group ends with partitions
    and no lag on them;
  * every instance stops cleanly (exit 0) on SIGTERM at the end.

An instance that exits on its own - at start (a port in use, a bad
setting) or later - fails the run at once, with its exit status and the
end of its log, instead of leaving the waits to run into their bounds.

It prints the figures as a table and exits 1 when a check fails.  Kills and
restarts happen on a schedule by design; no check depends on timing, and
every wait is for something observed (a bound only stops a stuck run).

  tests/chaos/churn.py --full                    20,000 commands, 2 minutes of churn
  tests/chaos/churn.py --protocol eager          range,roundrobin instead of cooperative-sticky
  tests/chaos/churn.py --commands 3000 --churn-seconds 40   (the CI version)
  tests/chaos/churn.py --instance-env LOG_LEVEL=debug       (more settings for the instances only)

Environment: KAFKA_BROKERS, DEDUPE_REDIS_ADDR (tests/integration/with-devenv
sets them), SIO_BIN (the binary), SIO_BINARY_DIR (for sio_group_members),
SIO_SOURCE_DIR (the tree: scripts/devenv, the workflow).
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.environ.get("SIO_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SIO_BIN") or os.path.join(TOP, "build", "src", "sio-orchestrator")
BUILD = os.environ.get("SIO_BINARY_DIR") or os.path.join(TOP, "build")
DEVENV = os.path.join(TOP, "scripts", "devenv")
PROTOCOLS = {"eager": "range,roundrobin", "cooperative": "cooperative-sticky"}
INSTANCES = ("a", "b", "c")
LOG_TAIL = 20  # lines of an instance's log shown when it exits on its own


def now_ms():
    return int(time.time() * 1000)


def log(msg):
    print("# " + msg, flush=True)


class Failure(Exception):
    pass


# --- Redis ------------------------------------------------------------------

class Redis:
    """A minimal RESP client (the test reads counters in bulk)."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.addr = (host, int(port))
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(self.addr, timeout=30)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("redis: unexpected reply %r" % line)

    def command(self, *args):
        if self.sock is None:
            self._connect()
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def command_or_none(self, *args):
        """command(), or None while Redis cannot answer (restarting, or
        loading its data after the restart)."""
        try:
            return self.command(*args)
        except RuntimeError as e:
            if "LOADING" not in str(e):
                raise
            return None
        except (OSError, ConnectionError):
            if self.sock is not None:
                self.sock.close()
            self.sock = None
            return None

    def mget(self, keys):
        values = []
        for i in range(0, len(keys), 1000):
            values.extend(self.command("MGET", *keys[i:i + 1000]))
        return values


# --- the processes ------------------------------------------------------------

class Instance:
    """One named service instance; each start is a new incarnation (a new
    process, named <name>.<n> in the execution records)."""

    def __init__(self, run, name):
        self.run, self.name = run, name
        self.n = 0
        self.proc = None
        self.incarnation = None
        self.err_path = None
        self.stopping = False  # killed or terminated by the run: its exit is expected

    def start(self):
        self.n += 1
        self.incarnation = "%s.%d" % (self.name, self.n)
        lua = os.path.join(self.run.dir, "lua-" + self.incarnation)
        os.makedirs(lua)
        with open(os.path.join(lua, "churn_whoami.lua"), "w") as f:
            f.write('return "%s"\n' % self.incarnation)
        env = dict(self.run.env, LUA_DIR=lua, **self.run.instance_env)
        args = [BIN, "serve", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000",
                "-X", "client.id=churn-" + self.name]
        self.err_path = os.path.join(self.run.dir, self.incarnation + ".err")
        err = open(self.err_path, "w")
        self.stopping = False
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                     stdin=subprocess.DEVNULL)
        err.close()
        self.run.started[self.incarnation] = now_ms()
        self.run.event("start", self.incarnation)

    def kill(self):
        self.check()  # an exit of its own before the kill still fails the run
        self.stopping = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.run.kills[self.incarnation] = now_ms()
        self.run.event("kill -9", self.incarnation)

    def terminate(self):
        self.check()
        self.stopping = True
        self.proc.send_signal(signal.SIGTERM)

    def check(self):
        """Raises a Failure when the current process has exited although
        the run neither killed nor terminated it: its exit status and the
        end of its log say why."""
        if self.proc is None or self.stopping:
            return
        rc = self.proc.poll()
        if rc is None:
            return
        status = ("exit status %d" % rc if rc >= 0
                  else "killed by %s" % signal.Signals(-rc).name)
        try:
            with open(self.err_path, errors="replace") as f:
                tail = f.read().splitlines()[-LOG_TAIL:]
        except OSError as e:
            tail = ["(log unreadable: %s)" % e]
        raise Failure("instance %s exited on its own (%s); the end of its log, %s:\n%s"
                      % (self.incarnation, status, self.err_path,
                         "\n".join("    " + line for line in tail) or "    (empty)"))

    def wait(self):
        """The exit code after terminate() ("hung" past 180 s)."""
        try:
            return self.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "hung"


class Run:
    def __init__(self, args):
        self.args = args
        self.strategy = PROTOCOLS[args.protocol]
        self.rng = random.Random(args.seed)
        self.dir = tempfile.mkdtemp(prefix="sio-churn.")
        tag = "%s.%d.%d" % (args.protocol, os.getpid(), self.rng.randrange(1 << 30))
        self.tag = tag
        self.commands_topic = "chaos.%s.commands" % tag
        self.responses_topic = "chaos.%s.responses" % tag
        self.dlq_topic = self.responses_topic + ".dlq"
        self.group = "chaos.%s" % tag
        self.env = dict(os.environ,
                        KAFKA_COMMANDS_TOPIC=self.commands_topic,
                        KAFKA_RESPONSES_TOPIC=self.responses_topic,
                        KAFKA_GROUP_ID=self.group,
                        KAFKA_ASSIGNMENT_STRATEGY=self.strategy,
                        DEDUPE_KEY_PREFIX="chaos:%s:" % tag,
                        WORKFLOWS_DIR=os.path.join(TOP, "tests", "chaos", "workflows"),
                        TOPIC_PARTITIONS="12",
                        WORKER_COUNT=str(args.workers), WORKER_INFLIGHT=str(args.inflight),
                        DEDUPE_LEASE=args.lease, DRAIN_TIMEOUT="30s",
                        STARTUP_TIMEOUT="10m", LOG_LEVEL="info",
                        # three instances on one host: each its own
                        # operations port (0 = any free one)
                        OPS_ADDR="127.0.0.1:0")
        self.redis = Redis(os.environ["DEDUPE_REDIS_ADDR"])
        self.events = []  # (ms, what, detail)
        self.kills = {}   # incarnation -> ms
        self.lock = threading.Lock()
        self.send_failures = []
        self.resent = 0
        self.restarted = {}  # "kafka" | "redis" -> when its restart completed (ms)
        self.restart_error = None
        self.started = {}    # incarnation -> when it was started (ms)
        self.kafka_up = threading.Event()
        self.kafka_up.set()
        self.sent_all = threading.Event()
        self.instance_env = dict(kv.split("=", 1) for kv in args.instance_env)
        self.instances = []

    def check_instances(self):
        """Fails the run when an instance has exited on its own."""
        for i in self.instances:
            i.check()

    def sleep_until(self, t):
        """Sleeps until time t, watching the instances meanwhile."""
        while True:
            self.check_instances()
            left = t - time.time()
            if left <= 0:
                return
            time.sleep(min(left, 0.5))

    def event(self, what, detail=""):
        with self.lock:
            self.events.append((now_ms(), what, detail))
        log("%s %s" % (what, detail))

    def cli(self, *args, timeout=300):
        return subprocess.run([BIN] + list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)


# --- waiting on Kafka -----------------------------------------------------------

def wait_for(run, what, bound_s, check, every=1.0):
    """Calls check() until it returns a true value; a bound only stops a
    stuck run (a Failure naming what never happened), and so does an
    instance exiting on its own (a Failure saying which, and why)."""
    end = time.time() + bound_s
    last = None
    while time.time() < end:
        run.check_instances()
        last = check()
        if last:
            return last
        time.sleep(every)
    run.check_instances()
    raise Failure("%s: not reached within %d s" % (what, bound_s))


def group_members(run):
    """The group as the coordinator sees it: {client_id: [partitions]} and
    the state, or None when it cannot be described now."""
    tool = os.environ.get("SIO_GROUP_MEMBERS") or os.path.join(BUILD, "tests", "sio_group_members")
    r = subprocess.run([tool, os.environ["KAFKA_BROKERS"], run.group], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        return None
    members, state = {}, None
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "client_id" in o:
            members.setdefault(o["client_id"], []).extend(o["partitions"])
        else:
            state = o["state"]
    return state, members


def offsets(run):
    """{partition: (committed, end)} of the commands topic, or None."""
    r = run.cli("offsets", timeout=120)
    if r.returncode != 0:
        return None
    out = {}
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if "partition" in o:
            out[o["partition"]] = (o["committed"], o["end"])
    return out if len(out) == 12 else None


class Outcomes:
    """Reads the responses topic and its DLQ as they grow (one `tail`
    process for the whole run)."""

    def __init__(self, run):
        self.path = os.path.join(run.dir, "outcomes.jsonl")
        self.f = open(self.path, "w")
        self.proc = subprocess.Popen([BIN, "tail", "--from-beginning", run.responses_topic, run.dlq_topic],
                                     env=run.env, stdout=self.f, stderr=subprocess.DEVNULL)
        self.reader = open(self.path)
        self.pending = ""
        self.success = {}  # correlation id -> count of success messages
        self.dlq = {}      # correlation id -> [entries]
        self.latest = {}   # incarnation -> start (ms) of its latest execution that succeeded
        self.run = run

    def read(self):
        chunk = self.reader.read()
        if not chunk:
            return
        data = self.pending + chunk
        lines = data.split("\n")
        self.pending = lines.pop()
        for line in lines:
            if not line:
                continue
            m = json.loads(line)
            v = m.get("value")
            if not isinstance(v, dict):
                raise Failure("a message that is not a JSON object on %s: %s" % (m.get("topic"), line[:200]))
            if m["topic"] == self.run.dlq_topic:
                self.dlq.setdefault(m["key"], []).append(v)
            elif v.get("status") == "success":
                self.success[m["key"]] = self.success.get(m["key"], 0) + 1
                work = json.loads(v["result"]["outputs"]["work"])
                by, start = work["by"], work["start"]
                self.latest[by] = max(start, self.latest.get(by, 0))

    def settled(self, ids):
        self.read()
        return sum(1 for i in ids if i in self.success or i in self.dlq)

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.read()
        self.f.close()
        self.reader.close()


# --- the run ----------------------------------------------------------------------

def make_commands(run):
    ids, lines = [], []
    for i in range(run.args.commands):
        cid = "%s-%d" % (run.tag, i)
        ids.append(cid)
        lines.append(json.dumps({"correlation_id": cid, "workflow": "churn",
                                 "attrs": {"id": cid, "ms": run.rng.randrange(0, 501)}},
                                separators=(",", ":")))
    return ids, lines


def sender(run, lines, batches, every_s, t0):
    """Sends the commands in batches, batch i at t0 + i * every_s, each by
    a `send` process of its own: one that waits out the broker's restart
    does not hold the next ones back.  run.sent_all is set once every batch
    has been handed to its process."""
    size = (len(lines) + batches - 1) // batches
    procs = []
    for b in range(batches):
        part = lines[b * size:(b + 1) * size]
        if not part:
            break
        delay = t0 + b * every_s - time.time()
        if delay > 0:
            time.sleep(delay)
        run.kafka_up.wait()  # a client holds its sends while the broker is down
        path = os.path.join(run.dir, "batch-%d.jsonl" % b)
        with open(path, "w") as f:
            f.write("\n".join(part) + "\n")
        err = open(path + ".err", "w")
        procs.append((b, err, subprocess.Popen([BIN, "send", "--lines", path, "-X", "message.timeout.ms=900000"],
                                               env=run.env, stdout=subprocess.DEVNULL, stderr=err)))
        run.event("sending", "batch %d (%d commands)" % (b, len(part)))
    run.sent_all.set()
    # A send that gave up (its flush outlasted by the broker's restart) is
    # sent again, as a client would: duplicates of what did arrive are
    # answered from the dedupe store.
    for b, err, proc in procs:
        path = os.path.join(run.dir, "batch-%d.jsonl" % b)
        rc, tries = proc.wait(), 1
        while rc != 0 and tries < 5:
            run.resent += 1
            run.event("sending again", "batch %d (exit %d)" % (b, rc))
            rc = subprocess.run([BIN, "send", "--lines", path], env=run.env, stdout=subprocess.DEVNULL,
                                stderr=err).returncode
            tries += 1
        err.close()
        if rc != 0:
            with open(err.name) as f:
                run.send_failures.append("batch %d: exit %d: %s" % (b, rc, f.read().strip()[-300:]))


def restart(run, what):
    """Stops and starts Kafka or Redis in place (a thread of its own); a
    failure is kept in run.restart_error for the main thread to raise."""
    run.event("stop " + what)
    if what == "kafka":
        run.kafka_up.clear()
    try:
        for step in ("stop", "start"):
            r = subprocess.run([DEVENV, step, what], capture_output=True, text=True)
            if r.returncode != 0:
                run.restart_error = "scripts/devenv %s %s: exit %d: %s" % (step, what, r.returncode,
                                                                         r.stderr.strip()[-400:])
                run.event("failed: " + step, what)
                return
            run.event({"stop": "stopped ", "start": "started "}[step] + what)
        run.restarted[what] = now_ms()
    finally:
        run.kafka_up.set()


def recovered(run, outcomes, instance, since):
    """True when the instance's current process has shown it works after
    a restart that completed at `since`: it started later, or it ran a
    command to success (Redis claim and records, Kafka output) that
    started later."""
    outcomes.read()
    return run.started[instance.incarnation] >= since or outcomes.latest.get(instance.incarnation, 0) >= since


def busy(run, instance):
    """The executions the instance's current process has in flight (its
    "busy" keys in Redis; 0 while Redis restarts)."""
    keys = run.redis.command_or_none("KEYS", "wf:churn:busy:%s:%s-*" % (instance.incarnation, run.tag))
    return len(keys or [])


def churn(run, instances, outcomes, ids):
    """The schedule: a kill every kill_every seconds for churn_seconds,
    Redis restarted at 30 % of it and the broker at 60 % (a broker restart
    takes a while: the kills go on meanwhile).  After a restart, only
    processes that have shown they work again are killed: a process that
    never recovers is then never replaced by a fresh one, and the final
    checks find it stuck.  The victim is a process seen in Redis with
    executions in flight, so a kill cuts work short (its claims stay until
    their lease expires); only once every command is sent and answered is
    an idle one taken."""
    a = run.args
    t0 = time.time()
    kills = int(a.churn_seconds // a.kill_every)
    redis_at, broker_at = a.churn_seconds * 0.3, a.churn_seconds * 0.6
    side = []
    for k in range(1, kills + 1):
        at = t0 + k * a.kill_every
        for when, what in ((redis_at, "redis"), (broker_at, "kafka")):
            if what not in [w for w, _ in side] and t0 + when < at:
                run.sleep_until(t0 + when)
                t = threading.Thread(target=restart, args=(run, what))
                t.start()
                side.append((what, t))
        run.sleep_until(at)

        def eligible():
            if run.restart_error:
                raise Failure(run.restart_error)
            since = max(run.restarted.values(), default=0)
            ok = [i for i in instances if recovered(run, outcomes, i, since)]
            working = [i for i in ok if busy(run, i) > 0]
            if working:
                return working
            if run.sent_all.is_set() and outcomes.settled(ids) == len(ids):
                return ok
            return None
        victim = run.rng.choice(wait_for(run, "a process that works after the last restart", a.bound, eligible,
                                         every=0.05))
        victim.kill()
        victim.start()
    for _, t in side:
        t.join()
    if run.restart_error:
        raise Failure(run.restart_error)


def execution_records(run, ids, runs):
    """{id: [(who, start, end) | None per execution]} for ids run twice or more."""
    keys, index = [], []
    for cid, r in zip(ids, runs):
        for n in range(1, r + 1):
            keys.append("wf:churn:run:%s:%d" % (cid, n))
            keys.append("wf:churn:end:%s:%d" % (cid, n))
            index.append((cid, n))
    values = run.redis.mget(keys) if keys else []
    out = {}
    for j, (cid, n) in enumerate(index):
        rec, end = values[2 * j], values[2 * j + 1]
        who = start = None
        if rec:
            who, start = rec.split(" ")
            start = int(start)
        out.setdefault(cid, []).append((who, start, int(end) if end else None) if rec else None)
    return out


def classify(run, cid, execs, dlq_entries):
    """Why a command ran more than once, one reason per repeated execution:
    'takeover' (its process was killed before the command finished; the next
    execution started after the kill, once the lease expired), 'retry' (the
    same process ran it again after a transient failure of the run),
    'unrecorded' (an execution cut short between its count and its record
    by a kill or the Redis restart),
    'after_dlq' (ran again after a DLQ entry released the claim), or a
    violation (a string saying what)."""
    reasons = []
    for j in range(len(execs) - 1):
        cur, nxt = execs[j], execs[j + 1]
        if cur is None:
            # Counted but not recorded: its process died, or Redis went
            # away, between the two writes - one of them must come before
            # the next execution.
            if nxt is not None and not any(t < nxt[1] for t, w, _ in run.events
                                           if w in ("kill -9", "stop redis")):
                reasons.append("violation: execution %d has no record and nothing interrupted it "
                               "before execution %d" % (j + 1, j + 2))
            else:
                reasons.append("unrecorded")
            continue
        who, start, end = cur
        killed = run.kills.get(who)
        # The same process ran it again before any kill of it, and the first
        # run never recorded its end: that run failed (a DLQ entry says so,
        # or Redis went away while it ran and took its end record), and the
        # command came back to the process that had it - not a takeover.
        failed = dlq_entries or any(start <= t < nxt[1] for t, w, _ in run.events
                                    if w == "stop redis") if nxt is not None else False
        if (nxt is not None and nxt[0] == who and end is None and failed
                and (killed is None or nxt[1] < killed)):
            reasons.append("after_dlq" if dlq_entries else "retry")
        elif killed is not None and killed >= start:
            if nxt is not None and nxt[1] < killed:
                reasons.append("violation: execution %d started at %d by %s while %s (killed at %d) "
                               "still ran execution %d" % (j + 2, nxt[1], nxt[0], who, killed, j + 1))
            else:
                reasons.append("takeover")
        elif nxt is not None and nxt[0] == who and end is None:
            reasons.append("retry")
        elif dlq_entries:
            reasons.append("after_dlq")
        else:
            reasons.append("violation: execution %d (%s) ran again (%s) with no crash, failure "
                           "or DLQ entry to explain it" % (j + 1, cur, nxt))
    return reasons


def report(rows):
    w = max(len(k) for k, _ in rows)
    print("| %-*s | %s |" % (w, "figure", "value"))
    print("|%s|%s|" % ("-" * (w + 2), "-" * 12))
    for k, v in rows:
        print("| %-*s | %s |" % (w, k, v))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="cooperative")
    p.add_argument("--commands", type=int, default=3000)
    p.add_argument("--churn-seconds", type=float, default=40)
    p.add_argument("--kill-every", type=float, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--lease", default="10s")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--bound", type=int, default=1800, help="seconds before a stuck run is failed")
    p.add_argument("--full", action="store_true", help="20,000 commands, 2 minutes of churn")
    p.add_argument("--keep", action="store_true", help="keep the run's folder (logs, records)")
    p.add_argument("--instance-env", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting for the service instances only (repeatable)")
    a = p.parse_args()
    # SIGTERM (ctest's timeout, an impatient operator) ends the run through
    # the cleanup below, which kills the instances it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("churn: terminated"))
    if a.full:
        a.commands, a.churn_seconds = 20000, 120
    if a.seed is None:
        a.seed = random.randrange(1 << 31)
    for kv in a.instance_env:
        if "=" not in kv:
            p.error("--instance-env %s: not NAME=VALUE" % kv)
    run = Run(a)
    log("seed %d, folder %s, protocol %s (%s)" % (a.seed, run.dir, a.protocol, run.strategy))
    instances = run.instances = [Instance(run, n) for n in INSTANCES]
    outcomes = None
    failures = []
    try:
        r = run.cli("topics")
        if r.returncode != 0:
            raise Failure("topics: " + r.stderr)
        ids, lines = make_commands(run)
        for i in instances:
            i.start()
        # Every member holds partitions before the load starts.
        wait_for(run, "3 members sharing 12 partitions", 600, lambda: (lambda g: g and g[0] == "Stable" and len(g[1]) == 3 and sum(len(v) for v in g[1].values()) == 12)(group_members(run)), every=2)
        outcomes = Outcomes(run)
        t0 = time.time()
        # Batches every 2.5 s, the last one at the end of the churn, so that
        # every kill finds work in flight.
        batches = max(2, int(a.churn_seconds / 2.5) + 1)
        send = threading.Thread(target=sender, args=(run, lines, batches, a.churn_seconds / (batches - 1), t0),
                                daemon=True)
        send.start()
        churn(run, instances, outcomes, ids)
        run.event("churn over")
        send.join()
        if run.send_failures:
            raise Failure("sending failed: " + "; ".join(run.send_failures))
        # Observed ends: every outcome, then the group's commits and members.
        try:
            wait_for(run, "an outcome for each of %d commands" % len(ids), a.bound,
                     lambda: outcomes.settled(ids) == len(ids), every=2)
        except Failure as e:
            since = max(run.restarted.values(), default=0)
            idle = [i.incarnation for i in instances if not recovered(run, outcomes, i, since)]
            raise Failure("%s (%d have one; processes with no success since the last restart: %s)"
                          % (e, outcomes.settled(ids), ", ".join(idle) or "none"))
        run.event("all outcomes seen")
        wait_for(run, "committed offsets equal to end offsets", 600,
                 lambda: (lambda o: o and all(c == e for c, e in o.values()))(offsets(run)), every=2)
        run.event("all offsets committed")

        def members_settled():
            g = group_members(run)
            if not g or g[0] != "Stable" or len(g[1]) != 3:
                return None
            return g[1]
        members = wait_for(run, "3 stable members", 600, members_settled, every=2)
        final_offsets = offsets(run)
        # All three at once, as a rollout or a scale-down to zero would.
        for i in instances:
            i.terminate()
        for i in instances:
            rc = i.wait()
            if rc != 0:
                failures.append("instance %s exited %s on SIGTERM" % (i.incarnation, rc))
        outcomes.close()

        # --- evidence -----------------------------------------------------------
        runs = [int(v) if v else 0 for v in run.redis.mget(["wf:churn:runs:" + c for c in ids])]
        multi = [(c, r) for c, r in zip(ids, runs) if r >= 2]
        records = execution_records(run, [c for c, _ in multi], [r for _, r in multi])
        no_outcome = [c for c in ids if c not in outcomes.success and c not in outcomes.dlq]
        dlq_only = [c for c in ids if c not in outcomes.success and c in outcomes.dlq]
        permanent = [c for c in dlq_only if any(e.get("error_class") != "transient" for e in outcomes.dlq[c])]
        success_unrun = [c for c, r in zip(ids, runs) if c in outcomes.success and r == 0]
        reasons = {"takeover": 0, "retry": 0, "unrecorded": 0, "after_dlq": 0}
        violations = []
        for cid, _ in multi:
            for why in classify(run, cid, records[cid], outcomes.dlq.get(cid)):
                if why.startswith("violation"):
                    violations.append("%s: %s" % (cid, why))
                else:
                    reasons[why] += 1
        dup_final = sum(n - 1 for n in outcomes.success.values() if n > 1)
        lag = {}
        for client, parts in members.items():
            lag[client] = (len(parts), sum(final_offsets[p][1] - final_offsets[p][0] for p in parts))
        uncommitted = [p for p, (c, e) in final_offsets.items() if c != e]

        if no_outcome:
            failures.append("%d commands have no outcome, e.g. %s" % (len(no_outcome), no_outcome[:3]))
        if permanent:
            failures.append("%d commands dead-lettered as permanent, e.g. %s" % (len(permanent), permanent[:3]))
        if success_unrun:
            failures.append("%d successes without an execution record, e.g. %s" % (len(success_unrun), success_unrun[:3]))
        if violations:
            failures.append("%d executions not explained by a crash or a retry: %s" % (len(violations), violations[:5]))
        if uncommitted:
            failures.append("partitions with committed != end: %s" % uncommitted)
        for client, (n, l) in lag.items():
            if n == 0 or l != 0:
                failures.append("member %s holds %d partitions with lag %d" % (client, n, l))

        kills = sum(1 for _, w, _ in run.events if w == "kill -9")
        # Executions a kill cut short: started by a process before its kill,
        # never ended.
        cut_short = 0
        for cid, execs in records.items():
            cut_short += sum(1 for e in execs if e and e[2] is None and run.kills.get(e[0], -1) >= e[1])
        rows = [
            ("protocol", "%s (%s)" % (a.protocol, run.strategy)),
            ("commands sent", len(ids)),
            ("instances / partitions", "3 / 12"),
            ("kill -9 + restart (every %gs for %gs)" % (a.kill_every, a.churn_seconds), kills),
            ("  executions cut short by a kill (no end record)", cut_short),
            ("Kafka broker restarts / Redis restarts", "1 / 1"),
            ("batches sent again (a send outlasted by the broker restart)", run.resent),
            ("final outcome: success", sum(1 for c in ids if c in outcomes.success)),
            ("final outcome: DLQ, transient", len(dlq_only) - len(permanent)),
            ("final outcome: DLQ, permanent", len(permanent)),
            ("no final outcome", len(no_outcome)),
            ("executed once", sum(1 for r in runs if r == 1)),
            ("executed 0 times (DLQ before running)", sum(1 for r in runs if r == 0)),
            ("commands executed more than once", len(multi)),
            ("  re-executions after a kill (lease expired)", reasons["takeover"]),
            ("  re-executions by the same process after a transient failure", reasons["retry"]),
            ("  re-executions after one cut short between its count and record", reasons["unrecorded"]),
            ("  re-executions after a DLQ entry released the claim", reasons["after_dlq"]),
            ("  re-executions not explained (violations)", len(violations)),
            ("duplicate final messages (stored response re-published)", dup_final),
            ("partitions committed == end offset", "%d / 12" % (12 - len(uncommitted))),
            ("lag per member at the end", ", ".join("%s: %d (%d partitions)" % (k, v[1], v[0])
                                                    for k, v in sorted(lag.items()))),
            ("instances stopped cleanly by SIGTERM", "%d / 3" % (3 - sum(1 for f in failures if "SIGTERM" in f))),
        ]
        report(rows)
        with open(os.path.join(run.dir, "summary.json"), "w") as f:
            json.dump({"rows": rows, "events": run.events, "failures": failures, "seed": a.seed}, f, indent=1)
    except Failure as e:
        failures.append(str(e))
    finally:
        for i in instances:
            if i.proc and i.proc.poll() is None:
                i.proc.kill()
                i.proc.wait()
        if outcomes and outcomes.proc.poll() is None:
            outcomes.proc.kill()
            outcomes.proc.wait()
    if failures:
        for f in failures:
            print("FAIL: " + f, file=sys.stderr)
        print("# logs kept in %s" % run.dir, file=sys.stderr)
        return 1
    if not a.keep:
        shutil.rmtree(run.dir, ignore_errors=True)
    print("ok - churn (%s): every command has its outcome, nothing ran twice unexplained, "
          "offsets committed, no member stuck" % a.protocol)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench/breakdown.py - where a latency run's time went, from the service's
own spans (see README "Benchmarks", "Where the latency goes").

    bench/breakdown.py SPANS_JSONL LOADGEN_DUMP PREFIX

SPANS_JSONL: what the OpenTelemetry Collector's file exporter wrote (OTLP
JSON, one ExportTraceServiceRequest per line) while `serve` exported its
spans to it; LOADGEN_DUMP: `sio_bench_loadgen --dump` of the same run
("<correlation id> <sent ns> <received ns> <response timestamp ms>" per
answered command); PREFIX: the run's correlation-id prefix (the collector
may hold other runs' spans).

Each traced command that succeeded is joined, by correlation id, with the
load generator's line.  Its `process <topic>` span starts when the service
polled the message and carries the message's Kafka timestamp
(`sio.kafka.timestamp_ms`) and the events `dequeued`, `claimed`, `ran`,
`stored`, `delivered`; with both topics on LogAppendTime the command's
life splits into legs that add up to the load generator's latency:

    to_broker   loadgen's produce call -> the command appended
    consume     appended -> polled by serve's consumer
    queue       polled -> taken up by a worker
    claim       the dedupe claim (SET NX PX) in Redis
    engine      the workflow run (Lua; step results produced meanwhile)
    store       the response stored in Redis (SET PX)
    produce     the final message's produce call -> appended to the topic
    to_loadgen  appended -> received by loadgen's consumer

and, off that path (they gate the offset commit, not the response):

    report      the final message appended -> its delivery report on the worker
    finish      that report -> the command's end (step results' reports)

Kafka timestamps are whole milliseconds, so each leg that starts or ends
at an append (to_broker, consume, produce, to_loadgen, report) is off by up
to 1 ms either way for one command (the pairs to_broker + consume and
produce + to_loadgen are exact).  Prints one JSON object: for each leg its
mean (_mean_ms: the means add up to the mean end-to-end latency, so they
say where the time goes), median (_p50_ms), 99th percentile (_p99_ms) and
its mean over the slowest 1 % of the commands by end-to-end latency
(_tail_ms: what the p99 is made of), plus the same for the end-to-end
latency (e2e) and the counts.
"""
import json
import sys

LEGS = ["to_broker", "consume", "queue", "claim", "engine", "store", "produce", "to_loadgen",
        "report", "finish"]
EVENTS = ["dequeued", "claimed", "ran", "stored", "delivered"]


def attr_value(v):
    for k in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if k in v:
            return v[k]
    return None


def spans(path):
    """The command spans in path: {correlation id: span}."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            req = json.loads(line)
            for rs in req.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        if not s.get("name", "").startswith("process "):
                            continue
                        a = {x["key"]: attr_value(x["value"]) for x in s.get("attributes", [])}
                        cid = a.get("sio.correlation_id")
                        if cid is not None:
                            s["_attrs"] = a
                            out[cid] = s
    return out


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[int((len(xs) - 1) * q)]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    spans_path, dump_path, prefix = sys.argv[1:]
    traced = {k: v for k, v in spans(spans_path).items() if k.startswith(prefix + "-")}
    rows = []
    skipped = 0
    with open(dump_path, encoding="utf-8") as f:
        for line in f:
            cid, sent, recv, resp_ms = line.split()
            s = traced.get(cid)
            if s is None:
                continue
            a = s["_attrs"]
            ev = {}
            for e in s.get("events", []):
                ev.setdefault(e["name"], int(e["timeUnixNano"]))
            if (a.get("sio.outcome") != "success" or any(n not in ev for n in EVENTS)
                    or a.get("sio.kafka.timestamp_ms") is None):
                skipped += 1  # a duplicate, a retry, a command without the events
                continue
            sent, recv = int(sent), int(recv)
            cmd_append = int(a["sio.kafka.timestamp_ms"]) * 1000000
            resp_append = int(resp_ms) * 1000000
            polled, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
            r = {
                "to_broker": cmd_append - sent,
                "consume": polled - cmd_append,
                "queue": ev["dequeued"] - polled,
                "claim": ev["claimed"] - ev["dequeued"],
                "engine": ev["ran"] - ev["claimed"],
                "store": ev["stored"] - ev["ran"],
                "produce": resp_append - ev["stored"],
                "to_loadgen": recv - resp_append,
                "report": ev["delivered"] - resp_append,
                "finish": end - ev["delivered"],
                "e2e": recv - sent,
            }
            rows.append(r)
    out = {"traced": len(traced), "matched": len(rows), "skipped": skipped,
           "timestamp_type": next((s["_attrs"].get("sio.kafka.timestamp_type")
                                   for s in traced.values()), None)}
    if rows:
        rows.sort(key=lambda r: r["e2e"])
        tail = rows[int((len(rows) - 1) * 0.99):]
        for leg in ["e2e"] + LEGS:
            xs = [r[leg] for r in rows]
            out[leg + "_mean_ms"] = round(sum(xs) / len(xs) / 1e6, 3)
            out[leg + "_p50_ms"] = round(pct(xs, 0.5) / 1e6, 3)
            out[leg + "_p99_ms"] = round(pct(xs, 0.99) / 1e6, 3)
            out[leg + "_tail_ms"] = round(sum(r[leg] for r in tail) / len(tail) / 1e6, 3)
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()

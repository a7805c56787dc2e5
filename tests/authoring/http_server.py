#!/usr/bin/python3
"""A local HTTP server for the http tool's tests (tests/authoring/it_http_tool.sh).

Prints its port on the first line of stdout, then serves on 127.0.0.1 until
killed.  Every request is logged (method, path, lower-case headers, body,
monotonic time in ms) and the log is served at GET /_log.  Answers:

  GET  /json                    200, Content-Type: application/json, ETag: "v7",
                                X-Multi twice, body {"x": 42}
  POST /echo                    200, the request as JSON {method, headers, body}
  ANY  /status/CODE?body=B&retry_after=R
                                CODE with body B and Retry-After: R
  ANY  /flaky/KEY?fail=N&code=C&retry_after=R
                                the first N requests with KEY answer C (with
                                Retry-After: R), the next ones 200 {"ok": true}
  ANY  /hold                    never answered (held until the server stops)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOG = []
COUNTS = {}
LOCK = threading.Lock()
HOLD = threading.Event()  # never set: held requests wait until exit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        entry = {"method": self.command, "path": url.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body, "at_ms": time.monotonic() * 1000}
        if url.path == "/_log":
            with LOCK:
                data = json.dumps(LOG).encode()
            return self.send(200, data, [("Content-Type", "application/json")])
        with LOCK:
            LOG.append(entry)
        parts = url.path.strip("/").split("/")
        if url.path == "/json":
            return self.send(200, b'{"x": 42}', [("Content-Type", "application/json"),
                                                ("ETag", '"v7"'), ("X-Multi", "a"), ("X-Multi", "b")])
        if url.path == "/echo":
            data = json.dumps({"method": self.command, "headers": entry["headers"], "body": body})
            return self.send(200, data.encode(), [("Content-Type", "application/json")])
        if parts[0] == "status" and len(parts) == 2:
            hs = [("Retry-After", q["retry_after"])] if "retry_after" in q else []
            return self.send(int(parts[1]), q.get("body", "").encode(), hs)
        if parts[0] == "flaky" and len(parts) == 2:
            with LOCK:
                COUNTS[parts[1]] = COUNTS.get(parts[1], 0) + 1
                k = COUNTS[parts[1]]
            if k <= int(q.get("fail", "1")):
                hs = [("Retry-After", q["retry_after"])] if "retry_after" in q else []
                return self.send(int(q.get("code", "503")), b"not yet", hs)
            return self.send(200, b'{"ok": true}', [("Content-Type", "application/json")])
        if url.path == "/hold":
            HOLD.wait()
            return None
        return self.send(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

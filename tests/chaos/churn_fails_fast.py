#!/usr/bin/env python3
"""churn_fails_fast.py - churn.py fails at once, and says why, when an
instance exits on its own.

The instances are given an operations port this test holds open, so each
`serve` exits 1 at start ("cannot listen").  churn.py must fail with the
instance's exit status and the end of its log, not wait for the group to
form until its bound (600 s; ctest's timeout for this test is shorter, so
a churn.py that waits fails here).  Same environment as churn.py.
"""
import os
import re
import shutil
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    r = subprocess.run([sys.executable, os.path.join(HERE, "churn.py"), "--commands", "10",
                        "--churn-seconds", "10", "--instance-env", "OPS_ADDR=127.0.0.1:%d" % port],
                       capture_output=True, text=True)
    held.close()
    out = r.stdout + r.stderr
    kept = re.search(r"^# logs kept in (\S+)$", r.stderr, re.M)
    failures = []
    if r.returncode != 1:
        failures.append("churn.py exited %d, not 1" % r.returncode)
    for want in ("exited on its own (exit status 1)", "cannot listen", "127.0.0.1:%d" % port):
        if want not in r.stderr:
            failures.append("its error output does not say %r" % want)
    if failures:
        print(out)
        for f in failures:
            print("FAIL: " + f, file=sys.stderr)
        return 1
    if kept:
        shutil.rmtree(kept.group(1), ignore_errors=True)
    print("ok - churn.py names the instance that exited at start, its status and its log")
    return 0


if __name__ == "__main__":
    sys.exit(main())

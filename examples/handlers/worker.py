#!/usr/bin/env python3
"""A persistent handler in Python (handler: { persistent: [path/to/worker.py] }: the script
itself, which its #! line runs; a relative path is the config's: see conf/preforkd.yaml).

Started once per worker child: one JSON job per line on stdin, one JSON answer per
line on stdout. Log to stderr: stdout is the protocol.
"""
import json
import sys

for line in sys.stdin:
    job = json.loads(line)
    payload = job["payload"]
    print(f"python worker: job {job['id']} on {job['queue']}, attempt {job['attempt']}",
          file=sys.stderr, flush=True)
    if isinstance(payload, dict) and payload.get("fail"):
        answer = {"id": job["id"], "status": "error", "error": "the payload asked to fail",
                  "retry": True}
    else:
        # ... the real work goes here ...
        answer = {"id": job["id"], "status": "ok"}
    print(json.dumps(answer), flush=True)

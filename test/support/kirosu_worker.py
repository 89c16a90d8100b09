#!/usr/bin/env python3
"""A Kirosu-style agent (Python standard library only) for the Kiris Kirosu port.

It keeps one TCP connection to the hub, leases tasks, "runs" them and acks them, exactly as a
Kirosu agent does:

  chat     result = the prompt reversed (with the system prompt, when set, as "[system] " prefix)
  python   runs `python3 -c <prompt>`; result = its stdout, or the task fails with its stderr
  any task whose prompt contains FAIL is acked as failed with error "asked to fail: <prompt>"

Usage: kirosu_worker.py --port PORT [--host H] [--key K] [--worker-id ID] [--tasks N]
                        [--max-tasks M] [--timeout SECONDS]
Stops after N tasks (default: when a lease comes back empty). Prints one JSON line per task
handled and a final {"done": count} line. The key defaults to $KIRO_SWARM_KEY.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid


class Hub:
    def __init__(self, host, port, key):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.reader = self.sock.makefile("r", encoding="utf-8", newline="\n")
        self.key = key

    def call(self, method, params=None):
        params = dict(params or {})
        if self.key:
            params["auth_token"] = self.key
        req_id = str(uuid.uuid4())
        line = json.dumps({"id": req_id, "method": method, "params": params}, ensure_ascii=False)
        self.sock.sendall((line + "\n").encode("utf-8"))
        reply_line = self.reader.readline()
        if not reply_line:
            raise RuntimeError("hub closed the connection")
        reply = json.loads(reply_line)
        if list(reply.keys()) != ["id", "result", "error"]:
            raise RuntimeError("unexpected reply keys: %r" % list(reply.keys()))
        if reply["id"] != req_id:
            raise RuntimeError("reply id %r does not match request id %r" % (reply["id"], req_id))
        if reply["error"]:
            raise RuntimeError("hub error: %s" % reply["error"]["message"])
        return reply["result"]

    def close(self):
        self.sock.close()


def run_task(task):
    prompt = task["prompt"]
    if "FAIL" in prompt:
        raise RuntimeError("asked to fail: " + prompt)
    if task["type"] == "python":
        proc = subprocess.run([sys.executable, "-c", prompt], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("python failed (code %d): %s" % (proc.returncode, proc.stderr.strip()))
        return proc.stdout
    text = prompt[::-1]
    if task.get("system_prompt"):
        text = "[%s] %s" % (task["system_prompt"], text)
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", default=os.environ.get("KIRO_SWARM_KEY"))
    ap.add_argument("--worker-id", default="py-" + uuid.uuid4().hex[:8])
    ap.add_argument("--tasks", type=int, default=0)
    ap.add_argument("--max-tasks", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    hub = Hub(args.host, args.port, args.key)
    handled = 0
    deadline = time.time() + args.timeout
    try:
        while args.tasks == 0 or handled < args.tasks:
            if time.time() > deadline:
                raise RuntimeError("timed out after %d tasks" % handled)
            leased = hub.call("lease", {"worker_id": args.worker_id, "max_tasks": args.max_tasks, "lease_seconds": 60})
            tasks = leased["tasks"]
            if not tasks:
                if args.tasks == 0:
                    break
                time.sleep(0.05)
                continue
            for task in tasks:
                try:
                    result = run_task(task)
                    hub.call("ack", {"task_id": task["task_id"], "status": "done", "result": result})
                    outcome = {"task_id": task["task_id"], "status": "done", "result": result}
                except Exception as e:  # noqa: BLE001 - any failure is reported to the hub
                    hub.call("ack", {"task_id": task["task_id"], "status": "failed", "error": str(e)})
                    outcome = {"task_id": task["task_id"], "status": "failed", "error": str(e)}
                print(json.dumps(outcome, ensure_ascii=False), flush=True)
                handled += 1
    finally:
        hub.close()
    print(json.dumps({"done": handled, "worker_id": args.worker_id}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

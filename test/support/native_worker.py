#!/usr/bin/env python3
"""A Kiris swarm worker in Python (standard library only) speaking the hub's native RPC protocol:
NDJSON over TCP, as described in the README ("Writing a worker in another language").

It registers with `worker.connect` (acking every Chunk of that stream), leases tasks of its kinds
whenever the hub pushes `WorkAvailable`, and for each lease sends a `task.heartbeat` carrying the
lease's fencing token, then reports the task:

  payload {"fail": MESSAGE, "retryable": BOOL}  task.fail with that message (retryable defaults to true)
  noop    payload {"text": T}                   task.complete with {"upper": T.upper(), "reversed": T[::-1], "worker": NAME}
  chat    payload {"prompt": T}                 the same, after one task.progress with a text part

Usage: native_worker.py --port PORT [--host H] [--key KEY] [--name NAME] [--kinds noop,chat]
                        [--capacity N] [--lease-seconds S] [--worker-id ID] [--tasks N]
                        [--drop-after-lease]
The key defaults to $KIRIS_TOKEN; it must be a worker key (`kiris key create NAME --scope worker`).
Stops when stdin closes, when the hub pushes `Drain`, or after N reported tasks (--tasks). With --drop-after-lease it closes its
connection right after its first lease and reconnects with its worker id before reporting the task
(leases survive a reconnect made with the same key).

It reconnects (registering again with its worker id) when the connection drops or the hub
interrupts the stream, and stops when another connection takes its worker id over (the stream
ends with Success).

Prints one JSON object per line per event ({"event": ...}). Exit status: 0 after a clean stop,
2 when the hub refuses the registration (e.g. the worker id belongs to another key).
"""

import argparse
import json
import os
import queue
import socket
import sys
import threading
import time


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}, ensure_ascii=False), flush=True)


def failure_of(exit_):
    """The first typed error (`Fail`) or defect (`Die`) of a failed Exit's cause tree."""
    stack = [exit_.get("cause") or {}]
    interrupted = False
    while stack:
        node = stack.pop()
        tag = node.get("_tag")
        if tag == "Fail":
            return {"kind": "error", "error": node.get("error")}
        if tag == "Die":
            return {"kind": "defect", "defect": node.get("defect")}
        if tag == "Interrupt":
            interrupted = True
        for side in ("right", "left"):
            if isinstance(node.get(side), dict):
                stack.append(node[side])
    return {"kind": "interrupted"} if interrupted else {"kind": "unknown", "cause": exit_.get("cause")}


class RpcFailure(Exception):
    def __init__(self, tag, failure):
        super().__init__("%s failed: %s" % (tag, json.dumps(failure)))
        self.tag = tag
        self.failure = failure


class ConnectionLost(Exception):
    pass


class Connection:
    """One TCP connection: requests with string ids, a reader thread that answers Chunks with Acks
    and hands every pushed value, stream end and connection loss to `events`."""

    def __init__(self, host, port, key, events, generation):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        self.key = key
        self.events = events
        self.generation = generation
        self.send_lock = threading.Lock()
        self.lock = threading.Lock()
        self.next_id = 0
        self.pending = {}  # request id -> queue receiving its Exit (unary calls)
        self.streams = set()  # request ids of open streams
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _send(self, message):
        line = (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self.send_lock:
            self.sock.sendall(line)

    def _new_id(self):
        with self.lock:
            self.next_id += 1
            return str(self.next_id)

    def _request(self, request_id, tag, payload):
        self._send({
            "_tag": "Request",
            "id": request_id,
            "tag": tag,
            "payload": payload,
            "headers": [["authorization", "Bearer " + self.key]],
        })

    def call(self, tag, payload, timeout=60):
        """A unary call: its Success value, or RpcFailure / ConnectionLost."""
        request_id = self._new_id()
        reply = queue.Queue(1)
        with self.lock:
            if self.closed:
                raise ConnectionLost()
            self.pending[request_id] = reply
        try:
            self._request(request_id, tag, payload)
        except OSError:
            raise ConnectionLost()
        try:
            exit_ = reply.get(timeout=timeout)
        except queue.Empty:
            raise ConnectionLost()
        if exit_ is None:
            raise ConnectionLost()
        if exit_["_tag"] == "Success":
            return exit_.get("value")
        raise RpcFailure(tag, failure_of(exit_))

    def stream(self, tag, payload):
        request_id = self._new_id()
        with self.lock:
            self.streams.add(request_id)
        self._request(request_id, tag, payload)
        return request_id

    def interrupt(self, request_id):
        try:
            self._send({"_tag": "Interrupt", "requestId": request_id})
        except OSError:
            pass

    def _read(self):
        reader = self.sock.makefile("r", encoding="utf-8", newline="\n")
        try:
            for line in reader:
                message = json.loads(line)
                tag = message.get("_tag")
                if tag == "Chunk":
                    request_id = message["requestId"]
                    for value in message["values"]:
                        self.events.put((self.generation, "push", value))
                    # Without this Ack the hub sends nothing more on the stream, not even its end.
                    self._send({"_tag": "Ack", "requestId": request_id})
                elif tag == "Exit":
                    request_id = message["requestId"]
                    with self.lock:
                        reply = self.pending.pop(request_id, None)
                        is_stream = request_id in self.streams
                        self.streams.discard(request_id)
                    if reply is not None:
                        reply.put(message["exit"])
                    elif is_stream:
                        self.events.put((self.generation, "stream-end", message["exit"]))
                elif tag == "Defect":
                    # A frame the hub could not handle as a request; the connection stays open.
                    emit("defect", defect=message.get("defect"))
                # "Pong" needs nothing.
        except (OSError, ValueError):
            pass
        with self.lock:
            self.closed = True
            pending, self.pending = self.pending, {}
        for reply in pending.values():
            reply.put(None)
        self.events.put((self.generation, "closed", None))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def compute(task):
    payload = task.get("payload") or {}
    text = payload.get("prompt") if task["kind"] == "chat" else payload.get("text")
    text = text if isinstance(text, str) else json.dumps(payload)
    return text


class Worker:
    def __init__(self, args):
        self.args = args
        self.events = queue.Queue()
        self.kinds = [k for k in args.kinds.split(",") if k]
        self.worker_id = args.worker_id
        self.generation = 0
        self.conn = None
        self.connect_id = None
        self.reported = 0
        self.dropped = False
        self.stopping = False

    # == connection and registration

    def open(self):
        """Connects and calls worker.connect (reclaiming the worker id once one was issued)."""
        self.generation += 1
        self.conn = Connection(self.args.host, self.args.port, self.args.key, self.events, self.generation)
        payload = {"name": self.args.name, "kinds": self.kinds, "capacity": self.args.capacity}
        if self.worker_id is not None:
            payload["workerId"] = self.worker_id
        self.connect_id = self.conn.stream("worker.connect", payload)
        emit("connecting", workerId=self.worker_id)

    def reconnect(self, reason):
        emit("disconnected", reason=reason)
        if self.conn is not None:
            self.conn.close()
        delay = 0.25
        while not self.stopping:
            try:
                self.open()
                return
            except OSError as e:
                emit("reconnecting", error=str(e), delaySeconds=delay)
                time.sleep(delay)
                delay = min(delay * 2, 10)

    def await_registered(self):
        """Handles events until this connection's `Registered` arrives (used mid-task)."""
        while True:
            generation, kind, value = self.events.get()
            if kind == "stdin-closed":
                self.stopping = True  # finish the task in hand first
                continue
            if generation != self.generation:
                continue
            if kind == "push" and value["_tag"] == "Registered":
                self.on_registered(value)
                return
            if kind in ("closed", "stream-end"):
                raise ConnectionLost()

    def on_registered(self, push):
        self.worker_id = push["workerId"]
        emit("registered", workerId=self.worker_id, leaseSeconds=push["leaseSeconds"], generation=self.generation)

    # == tasks

    def lease_all(self):
        """Leases until the hub has nothing more for us (a full batch means more may wait)."""
        while not self.stopping and self.worker_id is not None:
            payload = {"workerId": self.worker_id, "kinds": self.kinds, "max": self.args.capacity}
            if self.args.lease_seconds is not None:
                payload["leaseSeconds"] = self.args.lease_seconds
            try:
                leases = self.conn.call("task.lease", payload)
            except RpcFailure as e:
                emit("refused", call="task.lease", failure=e.failure)
                return
            for lease in leases:
                self.run(lease)
                if self.stopping:
                    return
            if len(leases) < self.args.capacity:
                return

    def run(self, lease):
        task = lease["task"]
        task_id = task["id"]
        fenced = {"taskId": task_id, "fencingToken": lease["fencingToken"]}
        emit("leased", taskId=task_id, kind=task["kind"], attempts=task["attempts"], expiresAt=lease["expiresAt"])
        try:
            if self.args.drop_after_lease and not self.dropped:
                self.dropped = True
                self.reconnect("dropping the connection while holding a lease")
                self.await_registered()
            beat = self.conn.call("task.heartbeat", {**fenced, "progress": {"stage": "running", "worker": self.args.name}})
            emit("heartbeat", taskId=task_id, expiresAt=beat["expiresAt"], cancelled=beat["cancelled"])
            if beat["cancelled"]:
                emit("cancelled", taskId=task_id)
                return
            payload = task.get("payload") or {}
            if isinstance(payload, dict) and "fail" in payload:
                retryable = payload.get("retryable", True)
                self.conn.call("task.fail", {**fenced, "message": str(payload["fail"]), "retryable": retryable})
                emit("failed", taskId=task_id, message=str(payload["fail"]), retryable=retryable)
            else:
                text = compute(task)
                if task["kind"] == "chat":
                    self.conn.call("task.progress", {**fenced, "parts": [{"type": "text", "text": text[::-1]}]})
                    emit("progress", taskId=task_id)
                result = {"upper": text.upper(), "reversed": text[::-1], "worker": self.args.name}
                self.conn.call("task.complete", {**fenced, "result": result})
                emit("completed", taskId=task_id, result=result)
            self.reported += 1
            if self.args.tasks is not None and self.reported >= self.args.tasks:
                self.stopping = True
        except RpcFailure as e:
            # LeaseLost: the lease expired, was cancelled or went to another worker; drop the task.
            emit("refused", call=e.tag, taskId=task_id, failure=e.failure)
        except ConnectionLost:
            # The events queue will tell the main loop; the lease stays ours until it expires.
            emit("lost", taskId=task_id)

    # == main loop

    def watch_stdin(self):
        for _ in sys.stdin:
            pass
        self.events.put((None, "stdin-closed", None))

    def main(self):
        threading.Thread(target=self.watch_stdin, daemon=True).start()
        self.open()
        while not self.stopping:
            try:
                generation, kind, value = self.events.get(timeout=30)
            except queue.Empty:
                # A safety net: lease now and then even without a push.
                self.lease_all()
                continue
            if kind == "stdin-closed":
                self.stopping = True
                break
            if generation != self.generation:
                continue  # from a connection already replaced
            if kind == "push":
                tag = value["_tag"]
                if tag == "Registered":
                    self.on_registered(value)
                    self.lease_all()
                elif tag == "WorkAvailable":
                    emit("work", kinds=value["kinds"])
                    self.lease_all()
                elif tag == "CancelTask":
                    # Tasks here run to completion at once; a longer one would stop and learn it from
                    # its next heartbeat (`cancelled: true`) or from the refusal of its report.
                    emit("cancel", taskId=value["taskId"])
                elif tag == "Drain":
                    # Finish the tasks in hand (none are left here), lease no more, disconnect, exit.
                    emit("drain")
                    self.stopping = True
                else:
                    emit("push", value=value)  # a push this worker does not know: ignore it
            elif kind == "stream-end":
                if value["_tag"] == "Success":
                    # Another connection registered this worker id: the registration moved there.
                    emit("replaced", workerId=self.worker_id)
                    self.connect_id = None
                    break
                failure = failure_of(value)
                if failure["kind"] == "error":
                    # Forbidden: not a worker key, or a worker id issued to another key.
                    emit("rejected", failure=failure)
                    self.conn.close()
                    return 2
                # Interrupted (the hub is shutting down) or a defect: register again.
                self.reconnect("the worker.connect stream ended: " + failure["kind"])
            elif kind == "closed":
                self.reconnect("the hub closed the connection")
        self.stop()
        return 0

    def stop(self):
        if self.conn is not None and self.connect_id is not None:
            self.conn.interrupt(self.connect_id)
            # Wait (briefly) for the stream's end, so that the hub has released the registration.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    generation, kind, _ = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if generation == self.generation and kind in ("stream-end", "closed"):
                    break
        if self.conn is not None:
            self.conn.close()
        emit("stopped", workerId=self.worker_id, reported=self.reported)


def parse_args():
    p = argparse.ArgumentParser(description="A Kiris worker speaking the native NDJSON RPC protocol")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", default=os.environ.get("KIRIS_TOKEN"))
    p.add_argument("--name", default="native-python")
    p.add_argument("--kinds", default="noop,chat")
    p.add_argument("--capacity", type=int, default=4)
    p.add_argument("--lease-seconds", type=float, default=None)
    p.add_argument("--worker-id", default=None)
    p.add_argument("--tasks", type=int, default=None)
    p.add_argument("--drop-after-lease", action="store_true")
    args = p.parse_args()
    if not args.key:
        p.error("a worker key is needed: --key or $KIRIS_TOKEN")
    return args


if __name__ == "__main__":
    sys.exit(Worker(parse_args()).main())

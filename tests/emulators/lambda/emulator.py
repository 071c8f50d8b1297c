#!/usr/bin/env python3
"""AWS Lambda emulator (Invoke API and Runtime API), for Backline's tests: what `cargo lambda watch` serves.

    python3 tests/emulators/lambda/emulator.py --port PORT [--host 127.0.0.1]
        [--function NAME ...] [--timeout SECONDS]

Prints "listening on PORT" once it listens (0 picks a free port) and serves until killed:

- the Invoke API for callers (boto3's lambda client, `cargo lambda invoke`, Backline's pump):
  POST /2015-03-31/functions/{name or ARN}/invocations
- the Runtime API for function processes, under one path prefix per function so several
  functions share the port: a process started with AWS_LAMBDA_RUNTIME_API=http://HOST:PORT/{name}
  polls GET /{name}/2018-06-01/runtime/invocation/next and answers with
  POST /{name}/2018-06-01/runtime/invocation/{id}/response (or .../error, or /init/error)
- a control API for tests under /_emulator.  --timeout (default 900) limits each invocation.
See README.md.
"""

import argparse
import collections
import json
import re
import select
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT, REGION = "123456789012", "us-east-1"
INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
RUNTIME = re.compile(
    r"^/([^/]+)/2018-06-01/runtime/(?:invocation/(next)|invocation/([^/]+)/(response|error)|init/(error))$"
)
FINISHED = ("ok", "error", "timeout")
# How often a runtime's long poll looks whether its process hung up (see Handler._hung_up).
POLL_CHECK_SECONDS = 1.0


def function_arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def now_ms():
    return int(time.time() * 1000)


def parse_json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:  # UnicodeDecodeError too: the listing shows null for what is not JSON
        return None


def error_json(raw, error_type):
    """A function's error as Lambda hands it to the caller: the JSON it posted, or its text wrapped."""
    try:
        json.loads(raw)
        return raw
    except ValueError:
        text = raw.decode("utf-8", errors="replace")
        return json.dumps({"errorType": error_type or "Unhandled", "errorMessage": text}).encode()


class Invocation:
    def __init__(self, function, event, timeout):
        self.function, self.event, self.timeout = function, event, timeout
        self.request_id = str(uuid.uuid4())
        self.status = "pending"
        self.response = None  # bytes, once finished
        self.started_ms, self.finished_ms = now_ms(), None
        self.queued_at, self.delivered_at = time.monotonic(), None

    def deadline(self):
        # The clock restarts when a runtime takes the invocation, so the caller's limit and the
        # Lambda-Runtime-Deadline-Ms the function sees agree; a start-up spent in the queue
        # (a function process still starting) does not eat into the function's own time.
        return (self.delivered_at or self.queued_at) + self.timeout

    def record(self):
        return {"function": self.function, "request_id": self.request_id, "status": self.status,
                "event": parse_json(self.event), "response": parse_json(self.response),
                "started_ms": self.started_ms, "finished_ms": self.finished_ms}


class World:
    """The functions, their queues of invocations, and every invocation so far, under one condition."""

    def __init__(self, functions, timeout):
        self.changed = threading.Condition()
        self.default_functions, self.default_timeout = list(functions), timeout
        self.reset({})

    def reset(self, body):
        if not isinstance(body, dict):
            raise ValueError("the body is a JSON object")
        functions = body.get("functions", self.default_functions)
        timeout = body.get("timeout_seconds", self.default_timeout)
        if not isinstance(functions, list) or not all(isinstance(f, str) and f for f in functions):
            raise ValueError('"functions" is a list of function names')
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError('"timeout_seconds" is a positive number')
        with self.changed:
            self.functions = frozenset(functions)
            self.timeout = float(timeout)
            self.queues = {name: collections.deque() for name in functions}
            self.by_id = {}
            self.log = []
            self.init_errors = {}
            # Runtimes polling keep waiting (their processes outlive a reset); callers waiting
            # on an old invocation get their time-out, and a late answer is an unknown id.
            self.changed.notify_all()

    def _finish(self, invocation, status, response):
        invocation.status, invocation.response = status, response
        invocation.finished_ms = now_ms()
        self.changed.notify_all()

    def submit(self, function, event):
        with self.changed:
            invocation = Invocation(function, event, self.timeout)
            self.log.append(invocation)
            self.by_id[invocation.request_id] = invocation
            if function in self.init_errors:
                self._finish(invocation, "error", self.init_errors[function])
            else:
                self.queues[function].append(invocation)
                self.changed.notify_all()
            return invocation

    def wait(self, invocation):
        """Blocks until the invocation is answered or its time is up."""
        with self.changed:
            while invocation.status not in FINISHED:
                left = invocation.deadline() - time.monotonic()
                if left > 0:
                    self.changed.wait(left)
                    continue
                if invocation.status == "pending":
                    # Out of the queue, or a runtime polling later would run a call nobody awaits.
                    queue = self.queues.get(invocation.function)
                    if queue is not None and invocation in queue:
                        queue.remove(invocation)
                message = f"{invocation.request_id} Task timed out after {invocation.timeout:.2f} seconds"
                body = {"errorType": "Sandbox.Timedout", "errorMessage": message}
                self._finish(invocation, "timeout", json.dumps(body).encode())
        return invocation

    def next(self, function, hung_up):
        """The oldest queued invocation of the function, now running; None if the poller left."""
        with self.changed:
            while not hung_up():
                queue = self.queues.get(function)
                if queue:
                    invocation = queue.popleft()
                    invocation.status, invocation.delivered_at = "running", time.monotonic()
                    self.changed.notify_all()  # its waiter's deadline moved
                    return invocation
                self.changed.wait(POLL_CHECK_SECONDS)
            return None

    def answer(self, function, request_id, status, body):
        """A runtime's response or error; returns the HTTP status to answer it with."""
        with self.changed:
            invocation = self.by_id.get(request_id)
            if invocation is None or invocation.function != function:
                return 400
            if invocation.status in FINISHED:
                return 410  # timed out (or answered twice): lambda_runtime logs it as stale
            self._finish(invocation, status, body)
            return 202

    def init_error(self, function, body):
        """The function could not start: what is queued and what comes fails with this error."""
        with self.changed:
            self.init_errors[function] = body
            queue = self.queues.get(function, ())
            while queue:
                self._finish(queue.popleft(), "error", body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: lambda_runtime's hyper client pools its connection
    server_version = "LambdaEmulator"
    world: World = None

    def log_message(self, fmt, *args):
        pass

    def _route(self):
        method = self.command
        try:
            # Read the body in full even to refuse the request, or the next request on this
            # keep-alive connection would start mid-body.
            body = self._body()
        except ValueError as exc:
            self.close_connection = True
            return self._send(400, {"message": f"unreadable body: {exc}"})
        path = urllib.parse.urlsplit(self.path).path  # ?Qualifier= and the like are ignored
        if path.startswith("/_emulator/"):
            return self._control(method, path, body)
        invoke = INVOKE.match(path)
        if invoke and method == "POST":
            return self._invoke(urllib.parse.unquote(invoke.group(1)), body)
        runtime = RUNTIME.match(path)
        if runtime:
            return self._runtime(method, runtime.groups(), body)
        self._send(404, {"message": f"no route {method} {path}"})

    do_GET = do_POST = _route

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                if not line:
                    raise ValueError("the connection closed mid-body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers (a streamed response's error headers; not emulated)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", headers=None):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # ------------------------------------------------------------------ Invoke API
    def _invoke(self, name, event):
        # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], or NAME[:QUALIFIER]: only the
        # name counts, every qualifier is $LATEST.
        function = name.split("function:", 1)[-1].split(":", 1)[0]
        kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if function not in self.world.functions:
            return self._user_error(404, "ResourceNotFoundException", f"Function not found: {function_arn(function)}")
        if kind not in ("Event", "RequestResponse", "DryRun"):
            return self._user_error(400, "InvalidParameterValueException", f"Unknown invocation type {kind}")
        if kind == "DryRun":
            return self._send(204)
        invocation = self.world.submit(function, event)
        if kind == "Event":
            # The caller does not wait; a thread still times the invocation out.
            threading.Thread(target=self.world.wait, args=(invocation,), daemon=True).start()
            return self._send(202, b"", {"x-amzn-RequestId": invocation.request_id})
        self.world.wait(invocation)
        headers = {"x-amzn-RequestId": invocation.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if invocation.status != "ok":
            headers["X-Amz-Function-Error"] = "Unhandled"
        self._send(200, invocation.response or b"", headers)

    def _user_error(self, status, code, message):
        # boto3 takes the error code from x-amzn-ErrorType; the body is Lambda's own shape.
        self._send(status, {"Type": "User", "message": message}, {"x-amzn-ErrorType": code})

    # ----------------------------------------------------------------- Runtime API
    def _runtime(self, method, groups, body):
        function, next_, request_id, outcome, init = groups
        if function not in self.world.functions:
            return self._send(404, {"errorType": "ResourceNotFound", "errorMessage": f"no function {function}"})
        if method != ("GET" if next_ else "POST"):
            return self._send(405, {"errorType": "MethodNotAllowed", "errorMessage": f"not {method}"})
        if next_:
            return self._deliver(function)
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        if init:
            self.world.init_error(function, error_json(body, error_type))
            return self._send(202, {"status": "OK"})
        if outcome == "response":
            status = self.world.answer(function, request_id, "ok", body)
        else:
            status = self.world.answer(function, request_id, "error", error_json(body, error_type))
        if status == 400:
            return self._send(400, {"errorMessage": "unknown request id", "errorType": "InvalidRequestID"})
        if status == 410:
            message = f"invocation {request_id} timed out or was answered already"
            return self._send(410, {"errorMessage": message, "errorType": "InvalidStateTransition"})
        self._send(202, {"status": "OK"})

    def _deliver(self, function):
        invocation = self.world.next(function, self._hung_up)
        if invocation is None:
            self.close_connection = True
            return
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        self._send(200, invocation.event, {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(now_ms() + int(invocation.timeout * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": function_arn(function),
            "Lambda-Runtime-Trace-Id": trace})

    def _hung_up(self):
        # A function process killed mid-poll leaves a closed socket; handing it an invocation
        # would lose that invocation until its time-out.  A closed socket reads as EOF.
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # ----------------------------------------------------------------- control API
    def _control(self, method, path, raw):
        world = self.world
        if (method, path) == ("POST", "/_emulator/reset"):
            try:
                world.reset(json.loads(raw) if raw.strip() else {})
            except ValueError as exc:
                return self._send(400, {"message": str(exc)})
            return self._send(200, {})
        if (method, path) == ("GET", "/_emulator/invocations"):
            with world.changed:
                return self._send(200, [invocation.record() for invocation in world.log])
        if (method, path) == ("GET", "/_emulator/health"):
            return self._send(200, {"ok": True})
        self._send(404, {"message": f"no control endpoint {method} {path}"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # bursts of concurrent invokes and polls

    def handle_error(self, request, client_address):
        # A caller that gave up before its answer is not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--function", action="append", default=[], help="a function name; may repeat")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds an invocation may take")
    args = parser.parse_args(argv)
    try:
        Handler.world = World(args.function, args.timeout)
    except ValueError as exc:
        parser.error(f"--function / --timeout: {exc}")
    server = Server((args.host, args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""AWS Lambda emulator for Backline's tests: what `cargo lambda watch` serves on a laptop.

    python3 tests/emulators/lambda/emulator.py --port PORT [--host 127.0.0.1]
        [--function NAME ...] [--timeout SECONDS]

Prints "listening on PORT" once it listens (0 picks a free port) and serves until killed:

- the Invoke API for callers (boto3's lambda client, `cargo lambda invoke`, `backline dev pump`):
  POST /2015-03-31/functions/{name}/invocations
- the Runtime API for function processes, one path prefix per function, so several functions
  share the port: a process started with AWS_LAMBDA_RUNTIME_API=http://HOST:PORT/{name} polls
  GET /{name}/2018-06-01/runtime/invocation/next and answers with
  POST /{name}/2018-06-01/runtime/invocation/{id}/response or .../error
- a control API for tests under /_emulator (see README.md).
"""

import argparse
import collections
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT, REGION = "123456789012", "us-east-1"
INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
RUNTIME = re.compile(r"^/([^/]+)/2018-06-01/runtime/(invocation/next|invocation/([^/]+)/(response|error)|init/error)$")


def arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


class Invocation:
    def __init__(self, function, event):
        self.function, self.event = function, event
        self.request_id = str(uuid.uuid4())
        self.status = "pending"
        self.response = None
        self.started_ms = time.time() * 1000
        self.finished_ms = None
        self.done = threading.Event()

    def finish(self, status, response):
        self.status, self.response = status, response
        self.finished_ms = time.time() * 1000
        self.done.set()

    def record(self):
        def parsed(raw):
            try:
                return json.loads(raw) if raw is not None else None
            except ValueError:
                return None

        return {
            "function": self.function,
            "request_id": self.request_id,
            "status": self.status,
            "event": parsed(self.event),
            "response": parsed(self.response),
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
        }


class World:
    def __init__(self, functions, timeout):
        self.lock = threading.Condition()
        self.default_functions, self.default_timeout = functions, timeout
        self.reset({})

    def reset(self, body):
        functions = body.get("functions", self.default_functions)
        timeout = body.get("timeout_seconds", self.default_timeout)
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            raise ValueError('"functions" is a list of function names')
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError('"timeout_seconds" is a positive number')
        with self.lock:
            self.functions = set(functions)
            self.timeout = float(timeout)
            self.pending = collections.defaultdict(collections.deque)
            self.by_id = {}
            self.log = []
            self.init_errors = {}
            self.lock.notify_all()

    def invoke(self, function, event):
        with self.lock:
            invocation = Invocation(function, event)
            self.log.append(invocation)
            if function in self.init_errors:
                invocation.finish("error", self.init_errors[function])
                return invocation
            self.by_id[invocation.request_id] = invocation
            self.pending[function].append(invocation)
            self.lock.notify_all()
        if not invocation.done.wait(self.timeout):
            with self.lock:
                if not invocation.done.is_set():
                    message = f"{invocation.request_id} Task timed out after {self.timeout:.2f} seconds"
                    invocation.finish("timeout", json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}))
        return invocation

    def next(self, function):
        with self.lock:
            while not self.pending[function]:
                self.lock.wait()
            invocation = self.pending[function].popleft()
            invocation.status = "running"
            return invocation

    def answer(self, request_id, status, body):
        with self.lock:
            invocation = self.by_id.get(request_id)
            if invocation is None or invocation.done.is_set():
                return False
            invocation.finish(status, body)
            return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    world: World = None

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status, body=b"", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/_emulator/invocations":
            with self.world.lock:
                return self.send(200, [i.record() for i in self.world.log])
        if path == "/_emulator/health":
            return self.send(200, {"ok": True})
        match = RUNTIME.match(path)
        if match and match.group(2) == "invocation/next":
            function = match.group(1)
            if function not in self.world.functions:
                return self.send(404, {"errorType": "ResourceNotFound", "errorMessage": f"no function {function}"})
            invocation = self.world.next(function)
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000 + self.world.timeout * 1000)),
                "Lambda-Runtime-Invoked-Function-Arn": arn(function),
                "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
            }
            return self.send(200, invocation.event, headers)
        self.send(404, {"message": f"no route GET {path}"})

    def do_POST(self):
        path = self.path.split("?")[0]
        body = self.body()
        if path == "/_emulator/reset":
            try:
                self.world.reset(json.loads(body or b"{}"))
            except ValueError as e:
                return self.send(400, {"message": str(e)})
            return self.send(200, {})
        match = INVOKE.match(path)
        if match:
            # A name, or an ARN (percent-encoded in the path); a qualifier after it is ignored.
            name = urllib.parse.unquote(match.group(1))
            return self.invoke(name.split("function:")[-1].split(":")[0], body)
        match = RUNTIME.match(path)
        if match:
            function, route, request_id, outcome = match.groups()
            if function not in self.world.functions:
                return self.send(404, {"errorType": "ResourceNotFound", "errorMessage": f"no function {function}"})
            if route == "init/error":
                with self.world.lock:
                    self.world.init_errors[function] = body.decode(errors="replace")
                return self.send(202, {"status": "OK"})
            status = "ok" if outcome == "response" else "error"
            text = body.decode(errors="replace")
            if status == "error":
                try:
                    json.loads(text)
                except ValueError:
                    text = json.dumps({"errorType": "Unhandled", "errorMessage": text})
            if not self.world.answer(request_id, status, text):
                return self.send(400, {"errorType": "InvalidRequestID", "errorMessage": "unknown request id"})
            return self.send(202, {"status": "OK"})
        self.send(404, {"message": f"no route POST {path}"})

    def invoke(self, function, event):
        if function not in self.world.functions:
            message = f"Function not found: {arn(function)}"
            return self.send(404, {"Type": "User", "message": message}, {"x-amzn-ErrorType": "ResourceNotFoundException"})
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            return self.send(204)
        if kind == "Event":
            # Queued like any other; the caller does not wait.
            threading.Thread(target=self.world.invoke, args=(function, event), daemon=True).start()
            return self.send(202)
        invocation = self.world.invoke(function, event)
        headers = {"x-amzn-RequestId": invocation.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if invocation.status != "ok":
            headers["X-Amz-Function-Error"] = "Unhandled"
        self.send(200, invocation.response or "", headers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--function", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    Handler.world = World(args.function, args.timeout)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fault-injecting HTTP reverse proxy, for Backline's tests: put in front of moto_server or an
emulator, it forwards every request and breaks the ones its rules pick.

    python3 tests/emulators/faultproxy/emulator.py --port PORT [--host 127.0.0.1]
        --upstream http://127.0.0.1:UPSTREAM_PORT [--seed N] [--stall-seconds S]

Prints "listening on PORT" once it listens (0 picks a free port) and serves until killed.
Requests under /_emulator/ are its control API (rules, stats); every other request goes to the
upstream, classified into an operation (classify.py) that rules (rules.py) match on.  It also
enforces x-amz-copy-source-if-match on copies, which moto ignores.  See README.md.
"""

import argparse
import http.client
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Run as a script, this folder is imported as the package `faultproxy`, so its modules cannot
# clash with other emulators' modules of the same name.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from faultproxy import classify, wire  # noqa: E402
from faultproxy.rules import STATUS_FAULTS, RuleError, State, parse_body, parse_rules, parse_seed  # noqa: E402

BLOCK = 64 * 1024  # response bodies are relayed in blocks of this size
UPSTREAM_TIMEOUT = 300.0  # seconds; moto copying a big object is slow, a hung upstream is not
COPY_CONDITIONS = ("x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match")
# What the proxy's own requests for a copy borrow from it.  moto answers an anonymous read of a
# private object 403 but checks no signature, so the copy's credentials (scope s3) do.
BORROWED_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token")


def log(message):
    print(f"faultproxy: {message}", file=sys.stderr, flush=True)


def read_body(rfile, headers):
    """(body, whether there is one) of a request framed by Content-Length or chunked encoding.
    Read in full even for a request about to be refused: on a kept-alive connection the next
    request would otherwise start mid-body."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            line = rfile.readline(65537)
            if not line:
                raise ValueError("the connection closed mid-body")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            chunks.append(read_exactly(rfile, size))
            rfile.readline()
        # Trailers end with a blank line.  Dropped: the body is sent on with a Content-Length
        # (S3's aws-chunked checksums travel inside the body, not as HTTP trailers).
        while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks), True
    length = headers.get("Content-Length")
    if length is None:
        return b"", False
    if not length.strip().isdigit():
        raise ValueError(f"Content-Length {length!r}")
    return read_exactly(rfile, int(length)), True


def read_exactly(rfile, size):
    data = rfile.read(size)
    if len(data) < size:
        raise ValueError(f"the connection closed {len(data)} bytes into a {size}-byte body")
    return data


class Call:
    """One proxied request, read in full, and what the proxy makes of it."""

    def __init__(self, method, target, headers, body, has_body):
        self.method, self.target = method, target
        # Not urlsplit: a target starting with // would lose its first segment as a host.
        self.path, _, self.query = target.partition("?")
        self.header_items = headers.items()  # original names and order, to forward
        self.headers = classify.lower_headers(headers)
        self.body, self.has_body = body, has_body
        self.operation = classify.classify(method, self.path, self.query, self.headers, body)
        self.protocol = classify.protocol(self.path, self.query, self.headers, body)
        source = self.headers.get("x-amz-copy-source") if method == "PUT" else None
        self.copy_source = wire.copy_source(source)  # (upstream path, versionId query) or None


class Answer:
    """A complete answer held in memory: the upstream's (to break it) or the proxy's own."""

    def __init__(self, status, headers, body, reason=None):
        self.status, self.reason, self.body = status, reason, body
        self.headers = list(headers.items()) if isinstance(headers, dict) else headers
        self.length = len(body)  # the Content-Length to send; None: none

    @classmethod
    def read(cls, call, response):
        """The upstream's response, read in full."""
        answer = cls(response.status, wire.forwarded_headers(response.getheaders()), response.read(), response.reason)
        if bodyless(call.method, response.status):
            # A HEAD's Content-Length is the object's, not its (empty) body's; keep the upstream's.
            length = response.getheader("Content-Length")
            answer.length = int(length) if length is not None else None
        return answer


def bodyless(method, status):
    return method == "HEAD" or status in (204, 304) or 100 <= status < 200


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the Rust SDK and botocore reuse connections
    server_version = "FaultProxy"
    state: State = None
    upstream = ("127.0.0.1", 80)
    stall_seconds = 30.0

    def setup(self):
        super().setup()
        self._conn = None  # this client connection's connection to the upstream

    def finish(self):
        self._drop_upstream()
        super().finish()

    def log_message(self, fmt, *args):
        pass  # stderr carries faults and errors only

    def _handle(self):
        try:
            body, has_body = read_body(self.rfile, self.headers)
        except ValueError as exc:
            self.close_connection = True
            return self._send(Answer(400, {"Content-Type": "application/json"},
                                     json.dumps({"error": f"unreadable body: {exc}"}).encode()))
        if self.path.startswith("/_emulator/"):
            return self._control(body)
        self._proxy(Call(self.command, self.path, self.headers, body, has_body))

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _handle

    # ------------------------------------------------------------------ proxying
    def _proxy(self, call):
        rule = self.state.decide(call)
        if rule is not None:
            log(f"{rule.name}: {rule.fault} ({rule.when or 'before'}) on {call.operation} {call.method} {call.path}")
        if rule is not None and rule.when == "before":
            return self._break(rule, call, None)
        if rule is not None and rule.fault == "replace_source":
            self._replace_source(rule, call)
        answer = self._copy_precondition(call)
        if answer is None:
            response = self._forward(call)
            if response is None:
                return  # a 502 went out
            if rule is None or rule.when != "after":
                return self._relay(call, response)
            answer = self._read_upstream(call, response)
            if answer is None:
                return  # a 502 went out
        if rule is not None and rule.when == "after":
            return self._break(rule, call, answer)
        self._send(answer, call.method)

    def _upstream(self):
        if self._conn is None:
            self._conn = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT)
        return self._conn

    def _drop_upstream(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _forward(self, call):
        """The upstream's response (headers read, body not yet), or None after answering 502."""
        headers = wire.forwarded_headers(call.header_items)
        if "host" not in call.headers:
            headers.append(("Host", "%s:%d" % self.upstream))
        for attempt in (1, 2):
            conn = self._upstream()
            reused = conn.sock is not None
            try:
                conn.putrequest(call.method, call.target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                if call.has_body:
                    conn.putheader("Content-Length", str(len(call.body)))
                conn.endheaders(call.body if call.has_body else None)
                return conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_upstream()
                # A kept-alive upstream connection the upstream closed while idle: send again
                # on a new one.  Anything else is the upstream's failure, told as a 502.
                stale = isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected))
                if reused and stale and attempt == 1:
                    continue
                return self._bad_gateway(call, exc)

    def _read_upstream(self, call, response):
        """The upstream's response in full, or None after answering 502 (it broke mid-body)."""
        try:
            return Answer.read(call, response)
        except (OSError, http.client.HTTPException) as exc:
            self._drop_upstream()
            return self._bad_gateway(call, exc)

    def _bad_gateway(self, call, exc):
        log(f"upstream failed on {call.method} {call.target}: {exc!r}")
        body = json.dumps({"error": "faultproxy: upstream %s:%d: %s" % (*self.upstream, exc)}).encode()
        self._send(Answer(502, {"Content-Type": "application/json"}, body), call.method)

    def _relay(self, call, response):
        """Sends the upstream's response on as it comes, block by block."""
        length = response.getheader("Content-Length")
        if length is None or response.chunked:
            # Chunked or closed-delimited upstream: held in memory, sent with a Content-Length.
            answer = self._read_upstream(call, response)
            if answer is not None:
                self._send_upstream(call, answer)
            return
        self.send_response_only(response.status, response.reason)
        for name, value in wire.forwarded_headers(response.getheaders()):
            self.send_header(name, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        try:
            while block := response.read(BLOCK):
                self.wfile.write(block)
        except (OSError, http.client.HTTPException) as exc:
            # Either side broke mid-body: the answer cannot be finished, nor the upstream
            # connection reused.
            log(f"relay of {call.method} {call.target} broken: {exc!r}")
            self._drop_upstream()
            self.close_connection = True

    # ------------------------------------------------------------------ faults
    def _break(self, rule, call, answer):
        """Injects the rule's fault; `answer` is the upstream's when the fault comes after it."""
        if rule.fault in STATUS_FAULTS:
            status, headers, body = wire.fault_answer(rule.fault, call.protocol)
            self._send(Answer(status, headers, body), call.method)
        elif rule.fault == "reset":
            self._reset_connection()
        elif rule.fault == "stall":
            # This connection's thread sleeps; every other connection has its own thread.
            time.sleep(self.stall_seconds if rule.seconds is None else rule.seconds)
            self.close_connection = True
        elif rule.fault == "short_body":
            self._send_upstream(call, answer, short=True)

    def _reset_connection(self):
        """Closes the client's connection with a TCP RST (SO_LINGER 0) and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference that would delay the real close; wfile writes to the socket
        # directly and holds none (and http.server flushes it after the handler).
        self.rfile.close()
        self.connection.close()

    def _replace_source(self, rule, call):
        """The copy's source changes under it: PUT the rule's body there first."""
        path, _ = call.copy_source
        result = self._side_request(call, "PUT", path, rule.body)
        log(f"{rule.name}: replaced {path} with {len(rule.body)} bytes: {result[0] if result else 'failed'}")

    def _copy_precondition(self, call):
        """A 412 when the copy's x-amz-copy-source-if-(none-)match does not hold, else None.
        A HEAD first: moto ignores If-Match on copies.  (Not atomic with the copy; a test
        changing the source changes it before, as replace_source does.)"""
        if call.copy_source is None or not any(name in call.headers for name in COPY_CONDITIONS):
            return None
        path, query = call.copy_source
        head = self._side_request(call, "HEAD", f"{path}?{query}" if query else path)
        if head is None or head[0] != 200:
            return None  # a missing source: the upstream's own answer (404 NoSuchKey)
        condition = wire.copy_precondition(head[1].get("etag"), call.headers)
        if condition is None:
            return None
        self.state.precondition_failed()
        log(f"precondition {condition} failed on {call.operation} {call.path}")
        status, headers, body = wire.precondition_failed(condition)
        return Answer(status, headers, body)

    def _side_request(self, call, method, target, body=None):
        """(status, lower-case headers) of a request of the proxy's own to the upstream, for
        `call`, on a connection of its own (the handler's may be mid-exchange); None if it failed."""
        headers = {name: call.headers[name] for name in BORROWED_HEADERS if name in call.headers}
        headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        conn = http.client.HTTPConnection(*self.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, classify.lower_headers(dict(response.getheaders()))
        except (OSError, http.client.HTTPException) as exc:
            log(f"{method} {target} upstream failed: {exc!r}")
            return None
        finally:
            conn.close()

    # ------------------------------------------------------------------ answers
    def _send(self, answer, method="GET"):
        """The proxy's own answer (an injected error, a 412, the control API)."""
        self.send_response(answer.status, answer.reason)
        self._send_headers(answer)
        if not bodyless(method, answer.status):
            self.wfile.write(answer.body)

    def _send_upstream(self, call, answer, short=False):
        """The upstream's answer, whole, or with its full Content-Length but half its body and
        the connection closed after it (short_body)."""
        self.send_response_only(answer.status, answer.reason)  # the upstream's Date and Server
        self._send_headers(answer)
        if not bodyless(call.method, answer.status):
            self.wfile.write(answer.body[: len(answer.body) // 2] if short else answer.body)
        if short:
            self.close_connection = True

    def _send_headers(self, answer):
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.length is not None and answer.status >= 200 and answer.status != 204:
            self.send_header("Content-Length", str(answer.length))
        self.end_headers()

    # ------------------------------------------------------------------ control API
    def _control(self, raw):
        endpoint = (self.command, self.path.partition("?")[0][len("/_emulator/"):].rstrip("/"))
        try:
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                raise RuleError("body", f"not JSON: {exc}") from None
            status, answer = self._control_answer(endpoint, body)
        except RuleError as exc:
            status, answer = 400, {"error": str(exc), "field": exc.field}
        self._send(Answer(status, {"Content-Type": "application/json"}, json.dumps(answer).encode()))

    def _control_answer(self, endpoint, body):
        state = self.state
        if endpoint == ("POST", "reset"):
            parse_body(body, ("rules", "seed"))
            rules, seed = parse_rules(body.get("rules", [])), parse_seed(body.get("seed"))
            state.reset(rules, seed)
            return 200, {"ok": True, "rules": [rule.name for rule in rules]}
        if endpoint == ("POST", "rules"):
            parse_body(body, ("rules",), required=("rules",))
            rules = parse_rules(body["rules"])
            state.replace_rules(rules)
            return 200, {"ok": True, "rules": [rule.name for rule in rules]}
        if endpoint == ("GET", "rules"):
            return 200, {"rules": state.rule_specs()}
        if endpoint == ("DELETE", "rules"):
            state.replace_rules([])
            return 200, {"ok": True}
        if endpoint == ("GET", "stats"):
            return 200, state.stats()
        if endpoint == ("DELETE", "stats"):
            state.clear_stats()
            return 200, {"ok": True}
        if endpoint == ("GET", "health"):
            return 200, {"ok": True}
        return 404, {"error": f"no control endpoint {endpoint[0]} /_emulator/{endpoint[1]}; see README.md"}


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled connection must not keep the process alive
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that hung up (or that a fault hung up on) is not news.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def upstream_address(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("an http://HOST:PORT URL (no path, no TLS)")
    return parts.hostname, parts.port or 80


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--upstream", required=True, help="http://HOST:PORT of the server behind")
    parser.add_argument("--seed", type=int, default=None, help="seeds the rate rules' draws (reset may reseed)")
    parser.add_argument("--stall-seconds", type=float, default=30.0, help="how long a stall holds a request")
    args = parser.parse_args(argv)
    try:
        Handler.upstream = upstream_address(args.upstream)
    except ValueError as exc:
        parser.error(f"--upstream: {exc}")
    Handler.state = State(args.seed)
    Handler.stall_seconds = args.stall_seconds
    server = Server((args.host, args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Sentry ingestion emulator (envelope and legacy store endpoints), for Backline's tests.

    python3 tests/emulators/sentry/emulator.py --port PORT [--host 127.0.0.1]

Prints "listening on PORT" once the socket listens (PORT 0 picks a free port
and prints it) and serves until killed.  Clients use the DSN
http://<public_key>@127.0.0.1:PORT/<project_id>.  See README.md.
"""

import argparse
import gzip
import json
import re
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROUTE = re.compile(r"^/api/(\d+)/(envelope|store)/?$")
# `Sentry sentry_key=abc, sentry_version=7, sentry_client=...`: pairs after the scheme word.
AUTH_PAIR = re.compile(r"([a-z_]+)=([^,\s]*)")
# Relay's words for a rejected key or project; the SDKs only look at the status.
REJECTED = "event submission rejected with_reason: ProjectId"


class ApiError(Exception):
    def __init__(self, status, detail, causes=None):
        super().__init__(detail)
        self.status, self.detail, self.causes = status, detail, causes


class World:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset({})

    def reset(self, body):
        with self.lock:
            # None: any project id and any public key is accepted.
            pid, key = body.get("project_id"), body.get("public_key")
            self.project_id = None if pid is None else str(pid)
            self.public_key = key
            self.events = []
            self.envelopes = []
            self.settings = {"status": None, "delay_seconds": 0, "retry_after": 60}


def parse_envelope(data):
    """(envelope headers, [(item header, payload bytes)]) as the envelope spec reads them: a
    header line, then items, each a header line and a payload of `length` bytes (or, with no
    `length`, up to the next newline), each terminated by a newline or the end of the body."""
    first_end = data.find(b"\n")
    first_end = len(data) if first_end < 0 else first_end
    headers = _json_object(data[:first_end], "invalid envelope header")
    items, offset = [], first_end + 1
    while offset < len(data):
        if data[offset:offset + 1] in (b"\n", b"\r"):
            offset += 1  # blank lines between items: serde_json skips whitespace too
            continue
        end = data.find(b"\n", offset)
        end = len(data) if end < 0 else end
        header = _json_object(data[offset:end], "invalid item header")
        if not isinstance(header.get("type"), str):
            raise ApiError(400, "invalid event envelope", ["item header without a type"])
        start = min(end + 1, len(data))  # the last header needs no newline
        length = header.get("length")
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise ApiError(400, "invalid event envelope", [f"bad item length {length!r}"])
            stop = start + length
            if stop > len(data):
                raise ApiError(400, "invalid event envelope", ["unexpected end of file"])
            if stop < len(data) and data[stop:stop + 1] != b"\n":
                raise ApiError(400, "invalid event envelope", ["missing newline after header or payload"])
        else:
            stop = data.find(b"\n", start)
            stop = len(data) if stop < 0 else stop
        items.append((header, data[start:stop]))
        offset = stop + 1
    return headers, items


def _json_object(raw, what, detail="invalid event envelope"):
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, detail, [what, str(exc)]) from None
    if not isinstance(value, dict):
        raise ApiError(400, detail, [what, "not a JSON object"])
    return value


def decode_body(raw, encoding):
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ApiError(400, "failed to read request body", [str(exc)]) from None
    if encoding != "identity":
        # Relay also reads br and zstd; clients here are plain (sentry crate) or gzip (sentry-sdk).
        raise ApiError(415, f"unsupported content encoding {encoding!r}")
    return raw


def event_id_of(value):
    """Relay answers event ids as 32 lower-case hex digits, whatever form they came in."""
    try:
        return uuid.UUID(str(value)).hex
    except ValueError:
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    server_version = "SentryEmulator"
    world: World = None
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, method):
        raw = self._body()
        url = urlsplit(self.path)
        if url.path.startswith("/_emulator/"):
            return self._control(method, url.path, raw)
        route = ROUTE.match(url.path)
        if route is None:
            return self._json(404, {"detail": "not found"})
        if method != "POST":
            return self._json(405, {"detail": "method not allowed"})
        query = parse_qs(url.query)
        record = {"endpoint": route.group(2), "project_id": route.group(1), "status": None,
                  "content_encoding": self.headers.get("Content-Encoding"),
                  "headers": None, "item_types": [], "items": []}
        try:
            self._ingest(route.group(1), route.group(2), query, raw, record)
        except ApiError as err:
            self._reject(err, record)
        except Exception as exc:  # a bug in the emulator: answer, then let it show on stderr
            self._json(500, {"detail": f"emulator error: {exc!r}"})
            raise

    def _reject(self, err, record):
        """An error answer in Relay's shape, `{"detail": ..., "causes": [...]}`."""
        record["status"] = err.status
        with self.world.lock:
            self.world.envelopes.append(record)
            retry_after = self.world.settings["retry_after"]
        body = {"detail": err.detail}
        if err.causes:
            body["causes"] = err.causes
        headers = {}
        if err.status == 429:
            headers = {"Retry-After": str(retry_after), "X-Sentry-Rate-Limits": f"{retry_after}::organization"}
        self._json(err.status, body, headers)

    def _body(self):
        # Read the body in full even to answer an error, or the next request on this
        # keep-alive connection would start mid-body.
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    # ------------------------------------------------------------- ingestion
    def _auth_key(self, query):
        """The public key from X-Sentry-Auth (or `Authorization: Sentry ...`) or `?sentry_key=`."""
        header = self.headers.get("X-Sentry-Auth") or self.headers.get("Authorization") or ""
        from_query = query.get("sentry_key", [None])[0]
        if header.startswith("Sentry "):
            if from_query is not None:
                raise ApiError(401, "multiple authorization payloads detected")
            key = dict(AUTH_PAIR.findall(header)).get("sentry_key")
            if not key:
                raise ApiError(401, "bad x-sentry-auth header")
            return key
        if header and self.headers.get("X-Sentry-Auth"):
            raise ApiError(401, "bad x-sentry-auth header")
        return from_query

    def _ingest(self, project_id, endpoint, query, raw, record):
        world = self.world
        with world.lock:
            settings = dict(world.settings)
            want_project, want_key = world.project_id, world.public_key
        if settings["delay_seconds"]:
            time.sleep(float(settings["delay_seconds"]))
        key = self._auth_key(query)
        # Auth errors win over body errors, as in Relay; the body is read first only because
        # an envelope may carry its DSN in its header.
        parse_error, headers, items = None, None, []
        try:
            data = decode_body(raw, self.headers.get("Content-Encoding"))
            if not data.strip():
                raise ApiError(400, "empty event data")
            if endpoint == "envelope":
                headers, items = parse_envelope(data)
            else:
                _json_object(data, "invalid event payload", "invalid JSON data")
                items = [({"type": "event"}, data)]
        except ApiError as err:
            parse_error = err
        if key is None and headers and isinstance(headers.get("dsn"), str):
            key = urlsplit(headers["dsn"]).username
        if not key:
            raise ApiError(401, "missing authorization information")
        if (want_project is not None and project_id != want_project) or (want_key is not None and key != want_key):
            raise ApiError(403, REJECTED)
        if parse_error:
            raise parse_error
        record["headers"] = headers
        record["item_types"] = [h["type"] for h, _ in items]
        events = []
        for header, payload in items:
            try:
                parsed = json.loads(payload) if header.get("type") != "attachment" else None
            except ValueError:
                parsed = None
            if header["type"] == "event":
                if not isinstance(parsed, dict):
                    raise ApiError(400, "invalid event envelope", ["invalid item payload"])
                events.append(parsed)
            record["items"].append({"header": header, "size": len(payload), "payload": parsed})
        if settings["status"] is not None and settings["status"] != 200:
            raise ApiError(int(settings["status"]), "emulated failure")
        record["status"] = 200
        id_source = (headers or {}).get("event_id") or (events[0].get("event_id") if events else None)
        event_id = event_id_of(id_source) if id_source else None
        if endpoint == "store" and event_id is None:
            event_id = uuid.uuid4().hex
        with world.lock:
            world.envelopes.append(record)
            for payload in events:
                world.events.append({"event": payload, "envelope": headers, "endpoint": endpoint,
                                     "project_id": project_id, "public_key": key})
        self._json(200, {"id": event_id} if event_id else {})

    # -------------------------------------------------------------- control API
    def _control(self, method, path, raw):
        world = self.world
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
            if (method, path) == ("POST", "/_emulator/reset"):
                world.reset(body)
            elif (method, path) == ("POST", "/_emulator/settings"):
                unknown = set(body) - {"status", "delay_seconds", "retry_after"}
                if unknown:
                    raise ValueError(f"unknown settings {sorted(unknown)}")
                if not isinstance(body.get("status", 200), (int, type(None))):
                    raise ValueError('"status" is an HTTP status code or null')
                with world.lock:
                    world.settings.update(body)
            elif (method, path) == ("GET", "/_emulator/events"):
                with world.lock:
                    return self._json(200, list(world.events))
            elif (method, path) == ("GET", "/_emulator/envelopes"):
                with world.lock:
                    return self._json(200, list(world.envelopes))
            elif (method, path) != ("GET", "/_emulator/health"):
                return self._json(404, {"error": f"no control endpoint {method} {path}"})
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        self._json(200, {"ok": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that timed out has gone by the time a delayed answer is written: not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    Handler.world = World()
    Handler.verbose = args.verbose
    server = Server((args.host, args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Amazon QuickSight emulator speaking restJson1, for Backline's tests.

    python3 tests/emulators/quicksight/emulator.py --port PORT [--host 127.0.0.1]

Prints "listening on PORT" once the socket listens (PORT 0 picks a free port
and prints it) and serves until killed.  The QuickSight API is routed by
routes.py; the control API under /_emulator/ and the presigned bundle
downloads under /_download/ are handled here.  See README.md.
"""

import argparse
import json
import os
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Run as a script, this folder is imported as the package `quicksight`, so
# its modules cannot clash with other emulators' modules of the same name.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quicksight import assets, exports, imports, jobs, routes, users  # noqa: E402
from quicksight.world import ApiError, World  # noqa: E402

# What each kind of job does when it finishes (see jobs.settle).
JOB_RUNNERS = {"export": exports._run_export, "import": imports._run_import}

# The credential scope of a SigV4 Authorization header: .../<date>/<region>/<service>/aws4_request
SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Context:
    """What a handler needs to know about one API call."""

    def __init__(self, op, params, query, body, region, host, path):
        self.op = op
        self.params = params
        self.account = params.get("AwsAccountId")
        self.query = query
        self.body = body
        self.region = region
        self.host = host
        self.path = path
        self.prepared = None

    def listing_key(self):
        # NextTokens are bound to the listing (operation + path) they came from.
        return f"{self.op} {self.path}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    server_version = "QuickSightEmulator"
    world: World = None
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    # ----------------------------------------------------------------- plumbing
    def _serve(self, method):
        raw = self._body()
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path.startswith("/_emulator/"):
                self._control(method, url.path, raw)
            elif url.path.startswith("/_download/") and method == "GET":
                status, ctype, body, filename = jobs.download(self.world, url.path, query)
                headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else {}
                self._send(status, body, ctype, headers)
            else:
                self._api(method, url.path, query, raw)
        except Exception as exc:  # a bug in the emulator: answer like AWS would
            self._api_error(ApiError("InternalFailureException", f"Emulator error: {exc!r}"), str(uuid.uuid4()))
            raise

    def _body(self):
        # The body must be read in full even when answering an error, or the
        # next request on this keep-alive connection would start mid-body.
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

    def _send(self, status, body, ctype="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, obj, headers=None):
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _region(self):
        m = SCOPE_RE.search(self.headers.get("Authorization") or "")
        return m.group(1) if m else self.world.settings["default_region"]

    def _host(self):
        return self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]

    # ------------------------------------------------------------ QuickSight API
    def _api(self, method, path, query, raw):
        request_id = str(uuid.uuid4())
        found = routes.match(method, path)
        if found is None:
            code = "UnknownOperationException"
            status = 405 if routes.path_exists(path) else 404
            body = {"Message": f"No operation for {method} {path}", "__type": code}
            return self._json(status, body, {"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id})
        op, handler, params = found
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.world.record_call(op, "SerializationException")
            return self._api_error(ApiError("InvalidParameterValueException", "The request body is not a JSON object"), request_id)
        ctx = Context(op, params, query, body, self._region(), self._host(), path)
        prepare = getattr(handler, "prepare", None)
        if prepare:
            ctx.prepared = prepare(self.world, ctx)  # network I/O stays outside the lock
        try:
            with self.world.lock:
                jobs.settle(self.world, JOB_RUNNERS)
                injected = self.world.injected_error(op)
                if injected:
                    raise injected
                result = handler(self.world, ctx)
        except ApiError as err:
            self.world.record_call(op, err.code)
            return self._api_error(err, request_id)
        self.world.record_call(op)
        out = {k: v for k, v in result.items() if v is not None}
        # Status is the model's httpResponseCode member; QuickSight repeats it in the body.
        out["Status"] = 200
        out["RequestId"] = request_id
        self._json(200, out, {"x-amzn-RequestId": request_id})

    def _api_error(self, err, request_id):
        body = {"Message": err.message, "RequestId": request_id, "__type": err.code, "Status": err.status}
        if err.resource_type:
            body["ResourceType"] = err.resource_type
        self._json(err.status, body, {"x-amzn-ErrorType": err.code, "x-amzn-RequestId": request_id})

    # -------------------------------------------------------------- control API
    def _control(self, method, path, raw):
        world = self.world
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            return self._json(400, {"error": f"invalid JSON: {exc}"})
        try:
            if (method, path) == ("POST", "/_emulator/reset"):
                world.reset(body)
            elif (method, path) == ("POST", "/_emulator/faults"):
                world.add_faults(body)
            elif (method, path) == ("POST", "/_emulator/settings"):
                with world.lock:
                    world.settings.update(body)
            elif (method, path) == ("GET", "/_emulator/state"):
                return self._json(200, self._state())
            elif (method, path) == ("GET", "/_emulator/health"):
                pass
            else:
                return self._json(404, {"error": f"no control endpoint {method} {path}"})
        except (ValueError, KeyError, TypeError) as exc:
            return self._json(400, {"error": f"{type(exc).__name__}: {exc}"})
        self._json(200, {"ok": True})

    def _state(self):
        world = self.world
        with world.lock:
            exports, imports = jobs.dump_jobs(world)
            return {
                "settings": world.settings,
                "calls": world.calls,
                "errors": world.errors,
                "faults": world.faults,
                "running_exports": sum(1 for j in exports if j["status"] in jobs.RUNNING),
                "running_imports": sum(1 for j in imports if j["status"] in jobs.RUNNING),
                "max_concurrent_exports_seen": world.max_running["export"],
                "max_concurrent_imports_seen": world.max_running["import"],
                "export_jobs": exports,
                "import_jobs": imports,
                "accounts": {
                    account_id: {
                        "identity_region": acc["identity_region"],
                        "namespaces": users.dump_identities(acc),
                        "regions": assets.dump_assets(acc),
                    }
                    for account_id, acc in world.accounts.items()
                },
            }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    Handler.world = World()
    Handler.verbose = args.verbose
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

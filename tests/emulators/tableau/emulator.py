#!/usr/bin/env python3
"""A Tableau Server REST API emulator for integration tests; see README.md beside this file.

    python3 emulator.py --port PORT [--host 127.0.0.1] [--fixtures DIR]

Prints `listening on PORT` once it accepts connections (with --port 0 the port is the one
the system picked) and serves until killed.
"""

import argparse
import os
import re
import socket
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import api_read  # noqa: E402
import api_write  # noqa: E402
import control  # noqa: E402
import publish  # noqa: E402
from http_types import ApiError, Request, json_response  # noqa: E402
from world import State  # noqa: E402

SITE = r"sites/(?P<site_id>[^/]+)"
WORKBOOK = SITE + r"/workbooks/(?P<workbook_id>[^/]+)"

# (method, path after /api/{version}/, route name, handler, needs a signed-in session)
ROUTES = [
    ("GET", r"serverinfo", "serverinfo", api_read.server_info, False),
    ("POST", r"auth/signin", "auth.signin", api_write.sign_in, False),
    ("POST", r"auth/signout", "auth.signout", api_write.sign_out, True),
    ("POST", r"auth/switchSite", "auth.switchSite", api_write.switch_site, True),
    ("GET", r"sites", "sites.list", api_read.list_sites, True),
    ("GET", r"sites/(?P<site_ref>[^/]+)", "sites.get", api_read.get_site, True),
    ("GET", SITE + r"/projects", "projects.list", api_read.list_projects, True),
    ("POST", SITE + r"/projects", "projects.create", api_write.create_project, True),
    ("GET", SITE + r"/users", "users.list", api_read.list_users, True),
    ("GET", SITE + r"/users/(?P<user_id>[^/]+)", "users.get", api_read.get_user, True),
    ("GET", SITE + r"/workbooks", "workbooks.list", api_read.list_workbooks, True),
    ("POST", SITE + r"/workbooks", "workbooks.publish", publish.publish, True),
    ("GET", WORKBOOK, "workbooks.get", api_read.get_workbook, True),
    ("DELETE", WORKBOOK, "workbooks.delete", api_write.delete_workbook, True),
    ("PUT", WORKBOOK, "workbooks.update", api_write.update_workbook, True),
    ("GET", WORKBOOK + r"/content", "workbooks.content", api_read.workbook_content, True),
    ("GET", WORKBOOK + r"/connections", "workbooks.connections", api_read.list_connections, True),
    ("GET", WORKBOOK + r"/revisions", "revisions.list", api_read.list_revisions, True),
    ("GET", WORKBOOK + r"/revisions/(?P<number>[^/]+)/content", "revisions.content", api_read.revision_content, True),
    ("POST", SITE + r"/fileUploads", "fileUploads.initiate", publish.initiate_upload, True),
    ("PUT", SITE + r"/fileUploads/(?P<upload_id>[^/]+)", "fileUploads.append", publish.append_upload, True),
    ("GET", SITE + r"/jobs/(?P<job_id>[^/]+)", "jobs.get", publish.get_job, True),
]
_COMPILED = [(m, re.compile(p + "$"), name, h, auth) for m, p, name, h, auth in ROUTES]
_API_PATH = re.compile(r"/api/(?P<version>[0-9]+(?:\.[0-9]+)*|exp)/(?P<rest>.*)$")
MAX_LOGGED_REQUESTS = 200_000


def route(method, rest):
    """(route name, handler, needs auth, path params), or an ApiError for no/wrong-method match."""
    allowed = False
    for m, pattern, name, handler, auth in _COMPILED:
        match = pattern.match(rest)
        if match:
            if m == method:
                return name, handler, auth, match.groupdict()
            allowed = True
    if allowed:
        raise ApiError(405, "405000", "Method Not Allowed", f"{method} is not allowed on this resource.")
    raise ApiError(404, "404000", "Resource Not Found", f"The emulator serves no {method} /{rest}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with connection pools expect
    server_version = "TableauEmulator/1"
    state = None  # set by main()
    verbose = False

    def log_message(self, format, *args):
        if self.verbose:
            super().log_message(format, *args)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            pieces = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(pieces)
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def dispatch(self):
        # The whole body is read first, whatever the answer: an unread body would be taken
        # for the next request on a kept-alive connection.
        body = self._read_body()
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, path, query, self.path, headers, body)
        state = self.state
        if path.startswith("/_emulator/"):
            try:
                with state.lock:
                    response = control.handle(state, req, path[len("/_emulator/") :])
            except Exception as e:  # an emulator bug, or a world shaped unlike the README says
                traceback.print_exc()
                response = json_response({"error": f"emulator error: {e!r}"}, 500)
            self.send(response)
            return
        route_name, response, truncate = "unknown", None, None
        try:
            match = _API_PATH.match(path)
            if not match:
                raise ApiError(404, "404000", "Resource Not Found", f"No such path {path}")
            route_name, handler, needs_auth, params = route(self.command, match.group("rest"))
            with state.lock:
                delay = state.faults.take("delay", self.command, self.path)
            if delay:
                time.sleep(float(delay["seconds"]))
            with state.lock:
                publish.settle(state)
                response, truncate = self.handle_api(state, req, handler, needs_auth, params)
        except ApiError as e:
            response = e.response()
        except Exception as e:  # an emulator bug: answer 500 and keep serving
            traceback.print_exc()
            response = ApiError(500, "500000", "Internal Server Error", f"emulator error: {e!r}").response()
        sent = self.send(response, truncate)
        with state.lock:
            if len(state.requests) < MAX_LOGGED_REQUESTS:
                entry = {"method": self.command, "path": self.path, "route": route_name, "status": response.status}
                if req.session is not None:
                    entry["principal"] = req.session.principal
                if not sent:
                    entry["truncated"] = True
                state.requests.append(entry)
            key = f"{self.command} {route_name}"
            state.route_counts[key] = state.route_counts.get(key, 0) + 1

    def handle_api(self, state, req, handler, needs_auth, params):
        """The answer to one API request; the caller holds the state lock."""
        throttle = state.faults.take("throttle", self.command, self.path)
        if throttle:
            raise ApiError(
                429,
                "429000",
                "Too Many Requests",
                "The request was rate limited; retry after the number of seconds in Retry-After.",
                {"Retry-After": str(throttle["retry_after"])},
            )
        injected = state.faults.take("error", self.command, self.path)
        if injected:
            raise ApiError(
                int(injected["status"]),
                injected["code"] or f"{injected['status']}000",
                injected["summary"],
                injected["detail"],
            )
        if needs_auth:
            token = req.headers.get("x-tableau-auth")
            if not token:
                raise ApiError(401, "401000", "Unauthorized Access", "No authentication credentials were provided.")
            session, why = state.sessions.check(token, state.settings["session_ttl_seconds"])
            if session is None:
                raise ApiError(
                    401, "401002", "Unauthorized Access", f"Invalid authentication credentials were provided ({why})."
                )
            req.session = session
        if "site_id" in params:
            site = state.sites.get(params["site_id"])
            if site is None:
                raise ApiError(404, "404000", "Resource Not Found", f"Site '{params['site_id']}' could not be found.")
            # A token is good for the site it signed in to only.
            if req.session.site_id != site.id:
                raise ApiError(
                    401, "401002", "Unauthorized Access", "The authentication token is not valid for this site."
                )
            req.site = site
        truncate = None
        response = handler(state, req, **params)
        if response.stream is not None:
            truncate = state.faults.take("truncate", self.command, self.path)
        return response, truncate

    def send(self, response, truncate=None):
        """Writes the response; False when a truncate fault cut the body short."""
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        no_body = response.status in (204, 304)
        for key, value in response.headers.items():
            if no_body and key == "Content-Type":
                continue
            # Header values go out as UTF-8: a plain Content-Disposition may carry a raw name.
            self._headers_buffer.append(f"{key}: {value}\r\n".encode("utf-8"))
        if not no_body:
            self.send_header("Content-Length", str(response.length))
        self.end_headers()
        if no_body or self.command == "HEAD":
            return True
        try:
            if response.stream is None:
                if truncate:
                    self.wfile.write(response.body[: int(truncate["after_bytes"])])
                    return self._cut()
                self.wfile.write(response.body)
                return True
            budget = int(truncate["after_bytes"]) if truncate else None
            for piece in response.stream:
                if budget is not None and len(piece) >= budget:
                    self.wfile.write(piece[:budget])
                    return self._cut()
                self.wfile.write(piece)
                if budget is not None:
                    budget -= len(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        return True

    def _cut(self):
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent test workers connect at once


def default_fixtures():
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
    return os.path.join(os.path.dirname(repo), "shared", "fixtures", "tableau")


def main():
    parser = argparse.ArgumentParser(description="Tableau Server REST API emulator")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--fixtures", default=default_fixtures())
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    Handler.state = State(args.fixtures)
    Handler.verbose = args.verbose
    server = Server((args.host, args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

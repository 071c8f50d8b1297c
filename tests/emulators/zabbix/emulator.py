#!/usr/bin/env python3
"""Zabbix trapper emulator (the server side of the Zabbix sender protocol), for Backline's tests.

    python3 tests/emulators/zabbix/emulator.py --port PORT [--control-port CPORT] [--host 127.0.0.1]

Prints "listening on PORT" once the trapper listens, then "control on CPORT"
once the HTTP control API listens (0 picks a free port and prints it), and
serves until killed.  One TCP port cannot be both the raw Zabbix protocol and
HTTP, hence the second port.  See README.md.
"""

import argparse
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A Zabbix server refuses packets over 1 GiB; the emulator holds everything in
# memory, so it draws the line much lower and answers "failed" instead.
MAX_DATA = 64 << 20
# How long a connection may take to deliver its request: a client that never
# finishes must not pin a thread for ever.
READ_TIMEOUT = 10.0

FLAG_PROTOCOL, FLAG_COMPRESSED, FLAG_LARGE = 0x01, 0x02, 0x04


class World:
    """What the trapper knows (hosts and their item keys), what it received, and its settings."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset({})

    def reset(self, body):
        hosts = body.get("hosts")
        if hosts is not None and not (
            isinstance(hosts, dict) and all(isinstance(keys, list) for keys in hosts.values())
        ):
            raise ValueError('"hosts" is {"<host>": ["<key>", ...]} or null')
        with self.lock:
            # None: accept every host and key (a trapper with every item configured).
            self.hosts = None if hosts is None else {h: set(keys) for h, keys in hosts.items()}
            self.items = []
            self.requests = []
            self.settings = {"delay_seconds": 0, "close_without_answer": False}

    def accepts(self, host, key):
        if self.hosts is None:
            return True
        return key in self.hosts.get(host, ())

    def receive(self, request):
        """Records a `sender data` request; returns (processed, failed, total)."""
        processed = failed = 0
        default_clock = request.get("clock")
        with self.lock:
            for item in request["data"]:
                if not isinstance(item, dict):
                    failed += 1
                    continue
                host, key = item.get("host"), item.get("key")
                ok = isinstance(host, str) and isinstance(key, str) and self.accepts(host, key)
                processed += ok
                failed += not ok
                self.items.append({
                    "host": host,
                    "key": key,
                    "value": item.get("value"),
                    "clock": item.get("clock", default_clock),
                    "accepted": ok,
                })
            total = processed + failed
            self.requests.append({"processed": processed, "failed": failed, "total": total})
        return processed, failed, total


class ProtocolError(Exception):
    pass


def frame(obj):
    """A message as a Zabbix server sends it: ZBXD, flags 0x01, 4-byte LE length, 4 zero bytes, JSON."""
    data = json.dumps(obj).encode()
    return b"ZBXD" + struct.pack("<BII", FLAG_PROTOCOL, len(data), 0) + data


def read_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 16))
        if not chunk:
            raise ProtocolError("connection closed before the message was complete")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(sock):
    """Reads one framed message (any of the header layouts) and returns its JSON."""
    head = read_exact(sock, 5)
    if head[:4] != b"ZBXD":
        raise ProtocolError("message does not start with ZBXD")
    flags = head[4]
    if not flags & FLAG_PROTOCOL:
        raise ProtocolError(f"unknown protocol flags 0x{flags:02x}")
    # Large packets carry 8-byte length and reserved fields, others 4-byte ones.
    fmt = "<QQ" if flags & FLAG_LARGE else "<II"
    length, reserved = struct.unpack(fmt, read_exact(sock, struct.calcsize(fmt)))
    if length > MAX_DATA or (flags & FLAG_COMPRESSED and reserved > MAX_DATA):
        raise ProtocolError(f"message of {length} bytes is too large")
    data = read_exact(sock, length)
    if flags & FLAG_COMPRESSED:
        # With compression the reserved field holds the uncompressed size.
        try:
            data = zlib.decompress(data)
        except zlib.error as exc:
            raise ProtocolError(f"cannot decompress: {exc}") from None
        if len(data) != reserved:
            raise ProtocolError(f"uncompressed size {len(data)} is not the announced {reserved}")
    try:
        return json.loads(data)
    except ValueError:
        raise ProtocolError("cannot parse the message as JSON") from None


class Trapper(socketserver.BaseRequestHandler):
    world: World = None
    verbose = False

    def handle(self):
        sock = self.request
        sock.settimeout(READ_TIMEOUT)
        try:
            self._serve(sock)
            # Close gracefully: closing with unread bytes (after a bad header)
            # would send a reset, and the client could lose the answer.
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(1.0)
            while sock.recv(1 << 16):
                pass
        except OSError:
            pass  # the client went away (its time-out, typically)

    def _serve(self, sock):
        try:
            request = read_message(sock)
        except ProtocolError as exc:
            return sock.sendall(frame({"response": "failed", "info": str(exc)}))
        except OSError:
            return  # time-out or reset before a whole request arrived: nothing to answer
        if not isinstance(request, dict) or request.get("request") != "sender data":
            what = request.get("request") if isinstance(request, dict) else None
            return sock.sendall(frame({"response": "failed", "info": f"unsupported request {what!r}"}))
        if not isinstance(request.get("data"), list):
            return sock.sendall(frame({"response": "failed", "info": 'no "data" array in the request'}))
        started = time.perf_counter()
        processed, failed, total = self.world.receive(request)
        spent = time.perf_counter() - started
        with self.world.lock:
            delay = float(self.world.settings["delay_seconds"] or 0)
            close = bool(self.world.settings["close_without_answer"])
        if self.verbose:
            sys.stderr.write(f"sender data: processed {processed}, failed {failed}\n")
        if delay:
            time.sleep(delay)
        if close:
            return  # the items arrived, but the client hears nothing back
        info = f"processed: {processed}; failed: {failed}; total: {total}; seconds spent: {spent:.6f}"
        sock.sendall(frame({"response": "success", "info": info}))


class Control(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ZabbixEmulator"
    world: World = None
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def _json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        world = self.world
        if self.path == "/_emulator/received":
            with world.lock:
                return self._json(200, {"items": list(world.items), "requests": list(world.requests)})
        if self.path == "/_emulator/health":
            return self._json(200, {"ok": True})
        self._json(404, {"error": f"no control endpoint GET {self.path}"})

    def do_POST(self):
        world = self.world
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
            if self.path == "/_emulator/reset":
                world.reset(body)
            elif self.path == "/_emulator/settings":
                unknown = set(body) - {"delay_seconds", "close_without_answer"}
                if unknown:
                    raise ValueError(f"unknown settings {sorted(unknown)}")
                with world.lock:
                    world.settings.update(body)
            else:
                return self._json(404, {"error": f"no control endpoint POST {self.path}"})
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        self._json(200, {"ok": True})


class TrapperServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hung up before its answer is not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the trapper's port; 0 picks a free port")
    parser.add_argument("--control-port", type=int, default=0, help="the HTTP control API's port; 0 picks one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)
    world = World()
    Trapper.world = Control.world = world
    Trapper.verbose = Control.verbose = args.verbose
    trapper = TrapperServer((args.host, args.port), Trapper)
    control = ControlServer((args.host, args.control_port), Control)
    threading.Thread(target=trapper.serve_forever, daemon=True).start()
    print(f"listening on {trapper.server_address[1]}", flush=True)
    print(f"control on {control.server_address[1]}", flush=True)
    try:
        control.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

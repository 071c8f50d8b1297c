"""What the emulators' test suites and the benchmarks share: an emulator started as a process
on a free loopback port, and calls to its control API (`/_emulator/...`).

The suites' conftest.py files and bench/*.py put this folder on sys.path and import it."""

import json
import os
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class EmulatorProcess:
    """`tests/emulators/<name>/emulator.py` with `args`. With `control_port` the emulator
    prints a second line, `control on <port>`, and its control API is there (Zabbix)."""

    def __init__(self, name, *args, control_port=False, quiet=False):
        command = [sys.executable, os.path.join(HERE, name, "emulator.py"), "--port", "0", "--host", "127.0.0.1"]
        command += list(args) + (["--control-port", "0"] if control_port else [])
        stderr = subprocess.DEVNULL if quiet else None
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.port = self._announced("listening on ")
        self.url = f"http://127.0.0.1:{self._announced('control on ') if control_port else self.port}"

    def _announced(self, prefix):
        line = self.process.stdout.readline()
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}"
        return int(line.split()[-1])

    def control(self, path, body=None, method=None):
        """`POST` with a body, else `GET`, to `/_emulator/<path>`; JSON answers decoded, others raw."""
        data = None if body is None else json.dumps(body).encode()
        method = method or ("POST" if data is not None else "GET")
        request = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            if response.headers.get_content_type() != "application/json":
                return raw
            return json.loads(raw or b"null")

    def reset(self, world):
        return self.control("reset", world)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

"""Fixtures: one Lambda emulator for the session, reset before every test."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FUNCTIONS = ["backline-worker", "backline-finalizer"]


class Emulator:
    def __init__(self, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def reset(self, world):
        return self.control("/_emulator/reset", world)

    def invocations(self):
        return self.control("/_emulator/invocations")


@pytest.fixture(scope="session")
def lambda_process():
    command = [sys.executable, os.path.join(HERE, "emulator.py"), "--port", "0", "--host", "127.0.0.1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert first.startswith("listening on "), first
    yield Emulator(int(first.split()[-1]))
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def emu(lambda_process):
    lambda_process.reset({"functions": FUNCTIONS, "timeout_seconds": 10})
    return lambda_process

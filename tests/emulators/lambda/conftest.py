"""Fixtures: one Lambda emulator for the session, reset before every test."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# The functions the emulator is started with; a reset without "functions" comes back to them.
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
def lambda_emulator_process():
    command = [sys.executable, os.path.join(HERE, "emulator.py"), "--port", "0", "--host", "127.0.0.1"]
    for function in FUNCTIONS:
        command += ["--function", function]
    proc = subprocess.Popen(command + ["--timeout", "10"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    yield Emulator(int(line.split()[-1]))
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def emu(lambda_emulator_process):
    lambda_emulator_process.reset({})
    return lambda_emulator_process

"""Fixtures: one Sentry emulator for the session, reset before every test."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


class Emulator:
    def __init__(self, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def dsn(self, key="abc", project="42"):
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def reset(self, world):
        return self.control("/_emulator/reset", world)

    def settings(self, settings):
        return self.control("/_emulator/settings", settings)

    def events(self):
        return self.control("/_emulator/events")

    def envelopes(self):
        return self.control("/_emulator/envelopes")


@pytest.fixture(scope="session")
def emulator_process():
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "emulator.py"), "--port", "0", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    yield Emulator(int(line.split()[-1]))
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def emu(emulator_process):
    emulator_process.reset({})
    return emulator_process

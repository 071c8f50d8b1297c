"""Fixtures: one Sentry emulator for the session, reset before every test."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/emulators: the shared harness
from harness import EmulatorProcess  # noqa: E402


class Emulator(EmulatorProcess):
    def dsn(self, key="abc", project="42"):
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def settings(self, settings):
        return self.control("settings", settings)

    def events(self):
        return self.control("events")

    def envelopes(self):
        return self.control("envelopes")


@pytest.fixture(scope="session")
def emulator_process():
    emulator = Emulator("sentry")
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(emulator_process):
    emulator_process.reset({})
    return emulator_process

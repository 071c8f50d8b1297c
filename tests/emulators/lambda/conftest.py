"""Fixtures: one Lambda emulator for the session, reset before every test."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/emulators: the shared harness
from harness import EmulatorProcess  # noqa: E402

# The functions the emulator is started with; a reset without "functions" comes back to them.
FUNCTIONS = ["backline-worker", "backline-finalizer"]


class Emulator(EmulatorProcess):
    def invocations(self):
        return self.control("invocations")


@pytest.fixture(scope="session")
def lambda_emulator_process():
    functions = [arg for function in FUNCTIONS for arg in ("--function", function)]
    emulator = Emulator("lambda", *functions, "--timeout", "10")
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(lambda_emulator_process):
    lambda_emulator_process.reset({})
    return lambda_emulator_process

"""Fixtures: one trapper emulator for the session, its world reset before every test."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/emulators: the shared harness
from harness import EmulatorProcess  # noqa: E402


class Emulator(EmulatorProcess):
    def settings(self, settings):
        return self.control("settings", settings)

    def received(self):
        return self.control("received")


@pytest.fixture(scope="session")
def emulator_process():
    emulator = Emulator("zabbix", control_port=True)
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(emulator_process):
    emulator_process.reset({})
    return emulator_process

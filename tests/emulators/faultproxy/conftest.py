"""Fixtures: one moto_server and one fault proxy in front of it for the session; both reset
before every test; boto3 clients that talk to moto through the proxy."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/emulators: the shared harness
from harness import EmulatorProcess  # noqa: E402

SEED = 11
STALL_SECONDS = 3  # the proxy's --stall-seconds; test_stall's client gives up after 1


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """moto_server on a free loopback port (the venv's, next to this Python)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        server = os.path.join(os.path.dirname(sys.executable), "moto_server")
        command = [server] if os.path.exists(server) else [sys.executable, "-m", "moto.server"]
        self.process = subprocess.Popen(command + ["-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def reset(self):
        """Every service's state gone; straight to moto, so the proxy does not count it."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=30).read()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Proxy(EmulatorProcess):
    def stats(self):
        return self.control("stats")

    def rules(self, *rules):
        return self.control("rules", {"rules": list(rules)})

    def client(self, service, attempts=None, url=None, **config):
        """A boto3 client through the proxy (or to `url`).  attempts=1: no retries, the fault
        is seen; None: botocore's standard retries (3 attempts), the fault is survived."""
        retries = {"mode": "standard"} if attempts is None else {"mode": "standard", "total_max_attempts": attempts}
        return boto3.client(service, endpoint_url=url or self.url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(retries=retries, **config))


@pytest.fixture(scope="session")
def moto():
    server = Moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def proxy_process(moto):
    proxy = Proxy("faultproxy", "--upstream", moto.url, "--seed", str(SEED),
                  "--stall-seconds", str(STALL_SECONDS), quiet=False)
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(proxy_process, moto):
    moto.reset()
    proxy_process.reset({})
    return proxy_process

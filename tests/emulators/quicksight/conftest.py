"""Fixtures: one emulator process for the session, boto3 clients, and a check
that every successful response body conforms to the botocore output shape
(member names, JSON types, epoch-number timestamps, required members)."""

import json
import os
import sys
import time

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/emulators: the shared harness
from harness import EmulatorProcess  # noqa: E402

ACCOUNT = "111111111111"
OTHER = "222222222222"
REGION = "us-east-1"


class Emulator(EmulatorProcess):
    shape_errors = []

    def faults(self, spec):
        return self.control("faults", spec)

    def state(self):
        return self.control("state")

    def client(self, region=REGION, **config):
        client = boto3.client(
            "quicksight",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(**config) if config else None,
        )
        client.meta.events.register("before-parse.quicksight", self._check_shape)
        return client

    def _check_shape(self, operation_model, response_dict, **_):
        if response_dict["status_code"] >= 300:
            headers = response_dict["headers"]
            body = json.loads(response_dict["body"] or b"{}")
            if headers.get("x-amzn-ErrorType") != body.get("__type") or "Message" not in body:
                self.shape_errors.append(f"{operation_model.name}: bad error {headers} {body}")
            return
        body = json.loads(response_dict["body"])
        check_value(body, operation_model.output_shape, operation_model.name, self.shape_errors)


def check_value(value, shape, where, errors):
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            return errors.append(f"{where}: expected object, got {value!r}")
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{where}.{key}: not a member of {shape.name}")
            else:
                check_value(item, shape.members[key], f"{where}.{key}", errors)
        for key in shape.required_members:
            if key not in value:
                errors.append(f"{where}: required member {key} of {shape.name} missing")
    elif t == "list":
        if not isinstance(value, list):
            return errors.append(f"{where}: expected list")
        for i, item in enumerate(value):
            check_value(item, shape.member, f"{where}[{i}]", errors)
    elif t == "map":
        if not isinstance(value, dict):
            return errors.append(f"{where}: expected map")
        for key, item in value.items():
            check_value(item, shape.value, f"{where}[{key}]", errors)
    elif t == "timestamp":
        # restJson1 bodies carry epoch seconds as JSON numbers.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{where}: timestamp {value!r} is not an epoch number")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: {value!r} is not an integer")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: {value!r} is not a boolean")
    elif t in ("string", "blob"):
        if not isinstance(value, str):
            errors.append(f"{where}: {value!r} is not a string")
        elif shape.enum and value not in shape.enum:
            errors.append(f"{where}: {value!r} not in enum {shape.name}")


@pytest.fixture(scope="session")
def emulator_process():
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    emulator = Emulator("quicksight")
    yield emulator
    emulator.stop()


@pytest.fixture
def emu(emulator_process):
    emulator_process.shape_errors = []
    emulator_process.reset({})
    yield emulator_process
    assert emulator_process.shape_errors == []


def poll(describe, max_polls=20):
    """Poll a Describe*Job call until a terminal status; returns (statuses seen, last response)."""
    seen = []
    for _ in range(max_polls):
        resp = describe()
        if not seen or seen[-1] != resp["JobStatus"]:
            seen.append(resp["JobStatus"])
        if resp["JobStatus"] not in ("QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "FAILED_ROLLBACK_IN_PROGRESS"):
            return seen, resp
        time.sleep(0.01)
    raise AssertionError(f"job never finished: {seen}")

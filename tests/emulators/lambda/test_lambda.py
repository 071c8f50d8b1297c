"""The Lambda emulator against boto3's Lambda client (the Invoke API) and runtimes written here
that do what the `lambda_runtime` crate does (the Runtime API); fixtures in conftest.py."""

import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
import pytest

WORKER, FINALIZER = "backline-worker", "backline-finalizer"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"
TRACE_RE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def client(emu):
    return boto3.client(
        "lambda",
        endpoint_url=emu.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: a retried invoke would queue a second invocation.
        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def next_invocation(emu, function):
    """GET .../invocation/next: (request id, headers, event bytes)."""
    url = f"{emu.url}/{function}/2018-06-01/runtime/invocation/next"
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return resp.headers["Lambda-Runtime-Aws-Request-Id"], resp.headers, resp.read()


def post(emu, function, path, body):
    """POST .../runtime/{path}: (status, answer as JSON), errors included."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"{emu.url}/{function}/2018-06-01/runtime/{path}", data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Runtime(threading.Thread):
    """A function process as lambda_runtime runs one: `count` times, GET next, run `handler` on the
    event, POST what it returns: ("response", body) or ("error", body); (None, None) never answers."""

    def __init__(self, emu, function, handler, count=1):
        super().__init__(daemon=True)
        self.emu, self.function, self.handler, self.count = emu, function, handler, count
        self.seen = []  # (request id, headers, event), in the order taken
        self.answers = []  # the status each POST got
        self.failure = None
        self.start()

    def run(self):
        try:
            for _ in range(self.count):
                request_id, headers, raw = next_invocation(self.emu, self.function)
                self.seen.append((request_id, headers, raw))
                outcome, body = self.handler(json.loads(raw) if raw else None)
                if outcome is not None:
                    status, _ = post(self.emu, self.function, f"invocation/{request_id}/{outcome}", body)
                    self.answers.append(status)
        except Exception as exc:  # shown by done()
            self.failure = exc

    def done(self, timeout=30):
        self.join(timeout)
        assert not self.is_alive(), f"the {self.function} runtime is still waiting"
        if self.failure:
            raise self.failure
        return self


def invoke_in_thread(lam, results, key, **kwargs):
    def call():
        result = lam.invoke(**kwargs)
        results[key] = (result, result["Payload"].read())

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_health(emu):
    assert emu.control("health") == {"ok": True}


def test_an_event_travels_to_the_function_and_its_response_back(emu):
    runtime = Runtime(emu, WORKER, lambda event: ("response", {"batchItemFailures": [], "saw": event["n"]}))
    before = time.time() * 1000
    result = client(emu).invoke(FunctionName=WORKER, Payload=json.dumps({"n": 7}))
    assert result["StatusCode"] == 200
    assert "FunctionError" not in result
    assert result["ExecutedVersion"] == "$LATEST"
    assert json.loads(result["Payload"].read()) == {"batchItemFailures": [], "saw": 7}
    [(request_id, headers, raw)] = runtime.done().seen
    assert runtime.answers == [202]
    assert UUID_RE.match(request_id)
    assert result["ResponseMetadata"]["RequestId"] == request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN.format(WORKER)
    assert before + 9_000 < int(headers["Lambda-Runtime-Deadline-Ms"]) < time.time() * 1000 + 10_500
    assert TRACE_RE.match(headers["Lambda-Runtime-Trace-Id"]), headers["Lambda-Runtime-Trace-Id"]
    assert headers["Content-Type"] == "application/json"
    assert json.loads(raw) == {"n": 7}


def test_a_function_error_is_reported_as_lambda_does(emu):
    runtime = Runtime(emu, WORKER, lambda event: ("error", {"errorType": "Panic", "errorMessage": "boom"}))
    result = client(emu).invoke(FunctionName=WORKER, Payload=b"{}")
    assert result["StatusCode"] == 200 and result["FunctionError"] == "Unhandled"
    assert json.loads(result["Payload"].read()) == {"errorType": "Panic", "errorMessage": "boom"}
    runtime.done()
    # An error body that is not JSON is wrapped.
    runtime = Runtime(emu, WORKER, lambda event: ("error", b"plain words"))
    result = client(emu).invoke(FunctionName=WORKER, Payload=b"{}")
    assert json.loads(result["Payload"].read()) == {"errorType": "Unhandled", "errorMessage": "plain words"}
    runtime.done()
    assert [i["status"] for i in emu.invocations()] == ["error", "error"]


def test_an_invocation_times_out_and_a_late_answer_is_refused(emu):
    emu.reset({"timeout_seconds": 0.5})
    runtime = Runtime(emu, WORKER, lambda event: (None, None))  # takes it and never answers
    result = client(emu).invoke(FunctionName=WORKER, Payload=b"{}")
    assert result["StatusCode"] == 200 and result["FunctionError"] == "Unhandled"
    body = json.loads(result["Payload"].read())
    [(request_id, _, _)] = runtime.done().seen
    assert body == {"errorType": "Sandbox.Timedout", "errorMessage": f"{request_id} Task timed out after 0.50 seconds"}
    status, answer = post(emu, WORKER, f"invocation/{request_id}/response", {"too": "late"})
    assert status == 410 and answer["errorType"] == "InvalidStateTransition"
    [record] = emu.invocations()
    assert record["status"] == "timeout" and record["response"]["errorType"] == "Sandbox.Timedout"


def test_an_invocation_no_runtime_took_times_out_and_leaves_the_queue(emu):
    emu.reset({"timeout_seconds": 0.5})
    lam = client(emu)
    started = time.monotonic()
    result = lam.invoke(FunctionName=WORKER, Payload=json.dumps({"n": "stale"}))
    assert 0.4 < time.monotonic() - started < 5
    assert json.loads(result["Payload"].read())["errorType"] == "Sandbox.Timedout"
    # The next runtime gets the next invocation, not the one nobody waits for any more.
    runtime = Runtime(emu, WORKER, lambda event: ("response", event))
    assert json.loads(lam.invoke(FunctionName=WORKER, Payload=json.dumps({"n": "fresh"}))["Payload"].read()) == {
        "n": "fresh"
    }
    runtime.done()
    assert [i["status"] for i in emu.invocations()] == ["timeout", "ok"]


def test_an_init_error_fails_what_is_queued_and_what_comes_until_a_reset(emu):
    lam = client(emu)
    results = {}
    queued = invoke_in_thread(lam, results, "queued", FunctionName=WORKER, Payload=b"{}")
    while not emu.invocations():
        time.sleep(0.01)
    status, answer = post(emu, WORKER, "init/error", {"errorType": "Runtime.InitError", "errorMessage": "no env"})
    assert (status, answer) == (202, {"status": "OK"})
    queued.join(10)
    after = lam.invoke(FunctionName=WORKER, Payload=b"{}")
    for result, payload in [results["queued"], (after, after["Payload"].read())]:
        assert result["FunctionError"] == "Unhandled"
        assert json.loads(payload) == {"errorType": "Runtime.InitError", "errorMessage": "no env"}
    assert [i["status"] for i in emu.invocations()] == ["error", "error"]
    # Another function is not affected; a reset forgets the init error.
    runtime = Runtime(emu, FINALIZER, lambda event: ("response", {"ok": 1}))
    assert "FunctionError" not in lam.invoke(FunctionName=FINALIZER, Payload=b"{}")
    runtime.done()
    emu.reset({})
    runtime = Runtime(emu, WORKER, lambda event: ("response", {"ok": 2}))
    assert json.loads(lam.invoke(FunctionName=WORKER, Payload=b"{}")["Payload"].read()) == {"ok": 2}
    runtime.done()


def test_two_runtimes_polling_one_function_each_get_their_own_invocations(emu):
    runtimes = [Runtime(emu, WORKER, lambda event: ("response", {"n": event["n"]}), count=3) for _ in range(2)]
    lam = client(emu)
    results = {}
    calls = [invoke_in_thread(lam, results, n, FunctionName=WORKER, Payload=json.dumps({"n": n})) for n in range(6)]
    for call in calls:
        call.join(30)
    for runtime in runtimes:
        runtime.done()
    assert {n: json.loads(payload) for n, (_, payload) in results.items()} == {n: {"n": n} for n in range(6)}
    first, second = ({request_id for request_id, _, _ in runtime.seen} for runtime in runtimes)
    assert len(first) == len(second) == 3 and not first & second, "each invocation went to exactly one runtime"
    assert first | second == {i["request_id"] for i in emu.invocations()}


def test_queued_invocations_go_out_in_order_and_event_invocations_do_not_wait(emu):
    lam = client(emu)
    for n in range(3):
        result = lam.invoke(FunctionName=WORKER, InvocationType="Event", Payload=json.dumps({"n": n}))
        assert result["StatusCode"] == 202 and result["Payload"].read() == b""
    assert [i["status"] for i in emu.invocations()] == ["pending"] * 3
    runtime = Runtime(emu, WORKER, lambda event: ("response", event), count=3).done()
    assert [json.loads(raw)["n"] for _, _, raw in runtime.seen] == [0, 1, 2]
    records = emu.invocations()
    assert [i["status"] for i in records] == ["ok"] * 3
    assert [i["request_id"] for i in records] == [request_id for request_id, _, _ in runtime.seen]
    assert lam.invoke(FunctionName=WORKER, InvocationType="DryRun", Payload=b"{}")["StatusCode"] == 204
    assert len(emu.invocations()) == 3, "a dry run invokes nothing"


def test_two_functions_run_at_the_same_time(emu):
    # The worker answers only once the finalizer has run: served one call at a time, both time out.
    finalizer_ran = threading.Event()

    def worker(event):
        assert finalizer_ran.wait(8), "the finalizer never ran while the worker was busy"
        return "response", {"worker": True}

    def finalizer(event):
        finalizer_ran.set()
        return "response", {"finalizer": True}

    runtimes = [Runtime(emu, WORKER, worker), Runtime(emu, FINALIZER, finalizer)]
    lam = client(emu)
    results = {}
    calls = [invoke_in_thread(lam, results, WORKER, FunctionName=WORKER, Payload=b"{}")]
    while not emu.invocations():
        time.sleep(0.01)
    calls.append(invoke_in_thread(lam, results, FINALIZER, FunctionName=FINALIZER, Payload=b"{}"))
    for call in calls:
        call.join(30)
    for runtime in runtimes:
        runtime.done()
    assert json.loads(results[WORKER][1]) == {"worker": True}
    assert json.loads(results[FINALIZER][1]) == {"finalizer": True}


def test_a_runtime_keeps_its_connection_and_may_send_a_chunked_response(emu):
    lam = client(emu)
    results = {}
    calls = [invoke_in_thread(lam, results, n, FunctionName=WORKER, Payload=json.dumps({"n": n})) for n in range(2)]
    # One connection throughout, as hyper's pool keeps it.
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    base = f"/{WORKER}/2018-06-01/runtime/invocation"
    for n in range(2):
        conn.request("GET", f"{base}/next")
        resp = conn.getresponse()
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        event = json.loads(resp.read())
        if n == 0:
            conn.putrequest("POST", f"{base}/{request_id}/response")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for part in (b'{"batchItemFailures":', b" [], ", b'"n": %d}' % event["n"]):
                conn.send(b"%x\r\n%s\r\n" % (len(part), part))
            conn.send(b"0\r\n\r\n")
        else:
            conn.request("POST", f"{base}/{request_id}/response", body=json.dumps({"n": event["n"]}))
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (202, {"status": "OK"})
    conn.close()
    for call in calls:
        call.join(30)
    payloads = sorted(json.loads(payload)["n"] for _, payload in results.values())
    assert payloads == [0, 1]
    assert any(json.loads(p) == {"batchItemFailures": [], "n": json.loads(p)["n"]} for _, p in results.values())


def test_a_runtime_that_hung_up_while_polling_gets_nothing(emu):
    # A function process killed mid-poll: its invocation must wait for a live runtime.
    dead = socket.create_connection(("127.0.0.1", emu.port))
    dead.sendall(f"GET /{WORKER}/2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.2)
    dead.close()
    time.sleep(0.2)
    results = {}
    call = invoke_in_thread(client(emu), results, "w", FunctionName=WORKER, Payload=b"{}")
    time.sleep(0.5)
    assert [i["status"] for i in emu.invocations()] == ["pending"]
    runtime = Runtime(emu, WORKER, lambda event: ("response", {"alive": True}))
    call.join(10)
    runtime.done()
    assert json.loads(results["w"][1]) == {"alive": True}


def test_an_invoke_with_a_chunked_body_reaches_the_function(emu):
    runtime = Runtime(emu, WORKER, lambda event: ("response", event))
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    conn.putrequest("POST", f"/2015-03-31/functions/{WORKER}/invocations")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for part in (b'{"Records"', b": []}"):
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (200, {"Records": []})
    assert resp.getheader("X-Amz-Executed-Version") == "$LATEST"
    conn.close()
    runtime.done()


@pytest.mark.parametrize(
    "name",
    [ARN.format(FINALIZER), ARN.format(FINALIZER) + ":$LATEST", FINALIZER + ":live", "123456789012:function:" + FINALIZER],
)
def test_a_function_may_be_named_by_its_arn(emu, name):
    runtime = Runtime(emu, FINALIZER, lambda event: ("response", {"done": True}))
    result = client(emu).invoke(FunctionName=name, Payload=b"{}", Qualifier="$LATEST")
    assert json.loads(result["Payload"].read()) == {"done": True}
    runtime.done()
    assert [i["function"] for i in emu.invocations()] == [FINALIZER]


@pytest.mark.parametrize("name", ["backline-nothing", ARN.format("backline-nothing")])
def test_an_unknown_function_is_not_found(emu, name):
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client(emu).invoke(FunctionName=name, Payload=b"{}")
    response = error.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["Error"]["Message"] == f"Function not found: {ARN.format('backline-nothing')}"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert UUID_RE.match(response["ResponseMetadata"]["RequestId"])
    # A reset to fewer functions makes one unknown too.
    emu.reset({"functions": [WORKER]})
    with pytest.raises(client(emu).exceptions.ResourceNotFoundException):
        client(emu).invoke(FunctionName=FINALIZER, Payload=b"{}")
    assert emu.invocations() == []


def test_the_runtime_api_refuses_unknown_ids_and_functions(emu):
    assert post(emu, WORKER, "invocation/nope/response", {}) == (
        400,
        {"errorMessage": "unknown request id", "errorType": "InvalidRequestID"},
    )
    assert post(emu, WORKER, "invocation/nope/error", {})[0] == 400
    assert post(emu, "backline-nothing", "init/error", {})[0] == 404
    with pytest.raises(urllib.error.HTTPError) as missing:
        next_invocation(emu, "backline-nothing")
    assert missing.value.code == 404
    # An id is only good under its own function's prefix.
    results = {}
    call = invoke_in_thread(client(emu), results, "w", FunctionName=WORKER, Payload=b"{}")
    request_id, _, _ = next_invocation(emu, WORKER)
    assert post(emu, FINALIZER, f"invocation/{request_id}/response", {})[0] == 400
    assert post(emu, WORKER, f"invocation/{request_id}/response", {"right": 1})[0] == 202
    assert post(emu, WORKER, f"invocation/{request_id}/response", {"twice": 1})[0] == 410
    call.join(10)
    assert json.loads(results["w"][1]) == {"right": 1}


def test_the_invocations_are_listed_in_order_of_arrival(emu):
    lam = client(emu)
    runtime = Runtime(emu, WORKER, lambda event: ("response", {"echo": event}), count=1)
    lam.invoke(FunctionName=WORKER, Payload=json.dumps({"first": 1}))
    runtime.done()
    # An event that is not JSON reaches the function unchanged and is listed as null.
    request = urllib.request.Request(f"{emu.url}/2015-03-31/functions/{FINALIZER}/invocations", data=b"not json")
    request.add_header("X-Amz-Invocation-Type", "Event")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202 and UUID_RE.match(resp.headers["x-amzn-RequestId"])
    request_id, _, raw = next_invocation(emu, FINALIZER)
    assert raw == b"not json" and request_id == resp.headers["x-amzn-RequestId"]
    first, second = emu.invocations()
    assert set(first) == {"function", "request_id", "status", "event", "response", "started_ms", "finished_ms"}
    assert (first["function"], first["status"], first["event"], first["response"]) == (
        WORKER, "ok", {"first": 1}, {"echo": {"first": 1}},
    )
    assert first["started_ms"] <= first["finished_ms"] <= second["started_ms"]
    assert (second["function"], second["status"], second["event"], second["response"], second["finished_ms"]) == (
        FINALIZER, "running", None, None, None,
    )
    assert post(emu, FINALIZER, f"invocation/{request_id}/response", b"plain")[0] == 202
    assert emu.invocations()[1]["status"] == "ok" and emu.invocations()[1]["response"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"functions": "backline-worker"}', "functions"),
        (b'{"functions": [1]}', "functions"),
        (b'{"timeout_seconds": 0}', "timeout_seconds"),
        (b'{"timeout_seconds": "5"}', "timeout_seconds"),
        (b'{"timeout_seconds": true}', "timeout_seconds"),
        (b"[]", "body"),
        (b"{not json", ""),
    ],
)
def test_a_bad_reset_is_refused_and_names_the_field(emu, body, field):
    req = urllib.request.Request(f"{emu.url}/_emulator/reset", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(req, timeout=5)
    assert bad.value.code == 400
    assert field in json.loads(bad.value.read())["message"]
    # Nothing changed: both functions are still there.
    runtime = Runtime(emu, FINALIZER, lambda event: ("response", {}))
    assert client(emu).invoke(FunctionName=FINALIZER, Payload=b"{}")["StatusCode"] == 200
    runtime.done()

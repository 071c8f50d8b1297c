"""The Lambda emulator against boto3's Lambda client (the Invoke API) and a runtime loop that
does what the `lambda_runtime` crate does (the Runtime API)."""

import json
import threading
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest


def client(emu):
    return boto3.client(
        "lambda",
        endpoint_url=emu.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def runtime(emu, function, answer, count=1):
    """A function process: takes `count` invocations and answers each with answer(event)."""

    def loop():
        base = f"{emu.url}/{function}/2018-06-01/runtime/invocation"
        for _ in range(count):
            with urllib.request.urlopen(f"{base}/next", timeout=30) as resp:
                request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
                assert resp.headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(f":function:{function}")
                assert int(resp.headers["Lambda-Runtime-Deadline-Ms"]) > 0
                event = json.loads(resp.read())
            outcome, body = answer(event)
            req = urllib.request.Request(f"{base}/{request_id}/{outcome}", data=json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 202

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_a_response_travels_back_to_the_caller(emu):
    runtime(emu, "backline-worker", lambda event: ("response", {"batchItemFailures": [], "saw": event["n"]}))
    result = client(emu).invoke(FunctionName="backline-worker", Payload=json.dumps({"n": 7}))
    assert result["StatusCode"] == 200
    assert "FunctionError" not in result
    assert json.loads(result["Payload"].read()) == {"batchItemFailures": [], "saw": 7}
    [record] = emu.invocations()
    assert record["status"] == "ok" and record["event"] == {"n": 7} and record["finished_ms"] >= record["started_ms"]


def test_a_function_error_is_reported_as_lambda_does(emu):
    runtime(emu, "backline-worker", lambda event: ("error", {"errorType": "Panic", "errorMessage": "boom"}))
    result = client(emu).invoke(FunctionName="backline-worker", Payload=b"{}")
    assert result["StatusCode"] == 200 and result["FunctionError"] == "Unhandled"
    assert json.loads(result["Payload"].read())["errorMessage"] == "boom"


def test_an_invocation_times_out(emu):
    emu.reset({"functions": ["backline-worker"], "timeout_seconds": 0.5})
    result = client(emu).invoke(FunctionName="backline-worker", Payload=b"{}")
    assert result["FunctionError"] == "Unhandled"
    assert json.loads(result["Payload"].read())["errorType"] == "Sandbox.Timedout"
    assert emu.invocations()[0]["status"] == "timeout"


def test_an_unknown_function_is_not_found(emu):
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client(emu).invoke(FunctionName="backline-nothing", Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_arn_names_the_function_and_event_invocations_do_not_wait(emu):
    runtime(emu, "backline-finalizer", lambda event: ("response", {}))
    arn = "arn:aws:lambda:us-east-1:123456789012:function:backline-finalizer"
    assert client(emu).invoke(FunctionName=arn, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202


def test_two_runtimes_of_one_function_share_its_invocations_and_functions_run_side_by_side(emu):
    seen = []
    lock = threading.Lock()

    def answer(event):
        with lock:
            seen.append(event["n"])
        return "response", {"n": event["n"]}

    threads = [runtime(emu, "backline-worker", answer, count=2) for _ in range(2)]
    threads.append(runtime(emu, "backline-finalizer", lambda event: ("response", {"final": True})))
    lam = client(emu)
    results = {}

    def call(function, n):
        results[(function, n)] = json.loads(lam.invoke(FunctionName=function, Payload=json.dumps({"n": n}))["Payload"].read())

    calls = [threading.Thread(target=call, args=("backline-worker", n)) for n in range(4)]
    calls.append(threading.Thread(target=call, args=("backline-finalizer", 9)))
    for t in calls:
        t.start()
    for t in calls + threads:
        t.join(timeout=30)
    assert sorted(seen) == [0, 1, 2, 3], "each invocation went to exactly one runtime"
    assert results[("backline-finalizer", 9)] == {"final": True}
    assert all(results[("backline-worker", n)] == {"n": n} for n in range(4))


def test_a_chunked_response_body_is_read_whole(emu):
    import http.client

    done = threading.Event()

    def function():
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
        conn.request("GET", "/backline-worker/2018-06-01/runtime/invocation/next")
        resp = conn.getresponse()
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        resp.read()
        body = (b'{"batchItemFailures":', b' []}')
        conn.putrequest("POST", f"/backline-worker/2018-06-01/runtime/invocation/{request_id}/response")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for part in body:
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 202
        done.set()

    threading.Thread(target=function, daemon=True).start()
    result = client(emu).invoke(FunctionName="backline-worker", Payload=b"{}")
    assert json.loads(result["Payload"].read()) == {"batchItemFailures": []}
    assert done.wait(5)


def test_an_init_error_fails_every_invocation_and_unknown_ids_are_refused(emu):
    base = f"{emu.url}/backline-worker/2018-06-01/runtime"
    req = urllib.request.Request(f"{base}/invocation/nope/response", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 400
    init = urllib.request.Request(f"{base}/init/error", data=b'{"errorType":"Init","errorMessage":"no env"}', method="POST")
    assert urllib.request.urlopen(init, timeout=5).status == 202
    result = client(emu).invoke(FunctionName="backline-worker", Payload=b"{}")
    assert result["FunctionError"] == "Unhandled" and b"no env" in result["Payload"].read()


def test_a_bad_reset_names_the_field(emu):
    req = urllib.request.Request(f"{emu.url}/_emulator/reset", data=b'{"functions": "x"}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(req, timeout=5)
    assert bad.value.code == 400 and b"functions" in bad.value.read()

"""The Sentry emulator fed hand-built envelopes (as the Rust `sentry` crate writes them, and
every variant the envelope format allows), the legacy store endpoint, auth, faults; and driven
by the real Python client, sentry-sdk. Fixtures in conftest.py."""

import contextlib
import gzip
import http.client
import json
import socket
import urllib.error
import uuid

import pytest
import sentry_sdk

EVENT_ID = uuid.UUID("22d00b3f-d1b1-4b5d-8d20-49d138cd8a9c")
AUTH = "Sentry sentry_key=abc, sentry_version=7, sentry_timestamp=1700000000, sentry_client=backline/0.1.0"


def rust_event():
    """Roughly what shared/src/notify/sentry.rs builds, serialized as sentry-types does."""
    return {
        "event_id": EVENT_ID.hex,
        "level": "error",
        "fingerprint": ["photos", "failed"],
        "message": "Backline job photos finished with failed tasks",
        "logger": "backline",
        "platform": "native",
        "timestamp": 1700000000.5,
        "release": "backline@0.1.0",
        "environment": "staging",
        "breadcrumbs": {"values": [
            {"timestamp": 1700000000.1, "type": "error", "category": "task", "level": "error",
             "message": "a.jpg: AccessDenied: no", "data": {"key": "a.jpg", "error": "AccessDenied: no"}},
        ]},
        "tags": {"job": "photos", "run_id": "photos-20261123T020000Z"},
        "extra": {"counts": {"failed": 2}},
    }


def item(obj, type_="event", length=True, **header):
    payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    head = {"type": type_, **header}
    if length:
        head["length"] = len(payload)
    return json.dumps(head).encode() + b"\n" + payload


def envelope(*items, headers=None, trailing=b"\n"):
    head = json.dumps({"event_id": str(EVENT_ID)} if headers is None else headers).encode()
    return b"\n".join([head, *items]) + trailing


def post(emu, body, path="/api/42/envelope/", headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    try:
        hdrs = {"X-Sentry-Auth": AUTH, "Content-Type": "application/x-sentry-envelope"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=body, headers={k: v for k, v in hdrs.items() if v is not None})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null"), dict(resp.getheaders())
    finally:
        conn.close()


def test_the_rust_crates_envelope(emu):
    status, body, _ = post(emu, envelope(item(rust_event())))
    assert (status, body) == (200, {"id": EVENT_ID.hex})
    [got] = emu.events()
    assert got["event"] == rust_event()
    assert got["envelope"] == {"event_id": str(EVENT_ID)}
    assert (got["endpoint"], got["project_id"], got["public_key"]) == ("envelope", "42", "abc")
    assert got["event"]["breadcrumbs"]["values"][0]["data"]["key"] == "a.jpg"
    [env] = emu.envelopes()
    assert (env["status"], env["item_types"], env["content_encoding"]) == (200, ["event"], None)


def test_implicit_lengths_several_items_and_no_final_newline(emu):
    attachment = b"line one\nline two\n\x00\xff binary"
    body = envelope(
        item({"sid": "s1", "status": "exited"}, "session", length=False),
        item(attachment, "attachment", filename="report.md"),
        item(rust_event(), length=False),
        item({"discarded_events": []}, "client_report"),
        trailing=b"",
    )
    status, body, _ = post(emu, body)
    assert (status, body) == (200, {"id": EVENT_ID.hex})
    [env] = emu.envelopes()
    assert env["item_types"] == ["session", "attachment", "event", "client_report"]
    assert env["items"][0]["payload"] == {"sid": "s1", "status": "exited"}
    assert (env["items"][1]["size"], env["items"][1]["header"]["filename"]) == (len(attachment), "report.md")
    assert [e["event"]["message"] for e in emu.events()] == [rust_event()["message"]]


def test_a_length_covers_newlines_inside_the_payload(emu):
    pretty = json.dumps(rust_event(), indent=2).encode()
    assert b"\n" in pretty
    assert post(emu, envelope(item(pretty)))[0] == 200
    assert emu.events()[0]["event"] == rust_event()


def test_gzip_body(emu):
    status, body, _ = post(emu, gzip.compress(envelope(item(rust_event()))), headers={"Content-Encoding": "gzip"})
    assert (status, body) == (200, {"id": EVENT_ID.hex})
    assert emu.events()[0]["event"]["tags"]["job"] == "photos"
    assert emu.envelopes()[0]["content_encoding"] == "gzip"


def test_chunked_body_and_keep_alive(emu):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        data = envelope(item(rust_event()))
        conn.request("POST", "/api/42/envelope/", body=iter([data[:10], data[10:]]),
                     headers={"X-Sentry-Auth": AUTH}, encode_chunked=True)
        resp = conn.getresponse()
        assert (resp.status, json.loads(resp.read())) == (200, {"id": EVENT_ID.hex})
        conn.request("POST", "/api/42/envelope/", body=b"{oops", headers={"X-Sentry-Auth": AUTH})
        resp = conn.getresponse()
        assert resp.status == 400
        resp.read()
        conn.request("POST", "/api/42/envelope/", body=data, headers={"X-Sentry-Auth": AUTH})
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert len(emu.events()) == 2


def test_store_endpoint(emu):
    event = rust_event()
    status, body, _ = post(emu, json.dumps(event).encode(), path="/api/42/store/", headers={"Content-Type": "application/json"})
    assert (status, body) == (200, {"id": EVENT_ID.hex})
    del event["event_id"]
    status, body, _ = post(emu, gzip.compress(json.dumps(event).encode()), path="/api/42/store/",
                           headers={"Content-Encoding": "gzip"})
    assert status == 200 and len(body["id"]) == 32
    got = emu.events()
    assert [(e["endpoint"], e["envelope"]) for e in got] == [("store", None), ("store", None)]
    assert got[1]["event"] == event
    status, body, _ = post(emu, b"{not json", path="/api/42/store/")
    assert (status, body["detail"]) == (400, "invalid JSON data")
    assert [e["item_types"] for e in emu.envelopes()] == [["event"], ["event"], []]


@pytest.mark.parametrize("headers, path, status, detail", [
    ({"X-Sentry-Auth": None}, "/api/42/envelope/", 401, "missing authorization information"),
    ({"X-Sentry-Auth": "Sentry sentry_version=7"}, "/api/42/envelope/", 401, "bad x-sentry-auth header"),
    ({"X-Sentry-Auth": "Bearer abc"}, "/api/42/envelope/", 401, "bad x-sentry-auth header"),
    ({}, "/api/42/envelope/?sentry_key=abc", 401, "multiple authorization payloads detected"),
    ({"X-Sentry-Auth": AUTH.replace("abc", "xyz")}, "/api/42/envelope/", 403, "rejected with_reason: ProjectId"),
    ({}, "/api/43/envelope/", 403, "rejected with_reason: ProjectId"),
    ({"X-Sentry-Auth": None}, "/api/42/store/", 401, "missing authorization information"),
])
def test_auth_is_checked_once_configured(emu, headers, path, status, detail):
    emu.reset({"project_id": 42, "public_key": "abc"})
    got, body, _ = post(emu, envelope(item(rust_event())), path=path, headers=headers)
    assert got == status
    assert detail in body["detail"]
    assert emu.events() == []
    assert emu.envelopes()[0]["status"] == status


@pytest.mark.parametrize("how", ["query", "envelope dsn"])
def test_other_places_for_the_key(emu, how):
    emu.reset({"project_id": "42", "public_key": "abc"})
    if how == "query":
        status, _, _ = post(emu, envelope(item(rust_event())), "/api/42/envelope/?sentry_key=abc&sentry_version=7",
                            headers={"X-Sentry-Auth": None})
    else:
        body = envelope(item(rust_event()), headers={"event_id": str(EVENT_ID), "dsn": emu.dsn()})
        status, _, _ = post(emu, body, headers={"X-Sentry-Auth": None})
    assert status == 200
    assert emu.events()[0]["public_key"] == "abc"


def test_any_key_and_project_by_default(emu):
    status, _, _ = post(emu, envelope(item(rust_event())), "/api/7/envelope/", {"X-Sentry-Auth": AUTH.replace("abc", "zzz")})
    assert status == 200
    assert (emu.events()[0]["project_id"], emu.events()[0]["public_key"]) == ("7", "zzz")


@pytest.mark.parametrize("body, headers, status", [
    (b"", {}, 400),
    (b"not json\n" + item(rust_event()), {}, 400),
    (envelope(b'{"type": "event", "length": 500}\n{}'), {}, 400),  # length past the end
    (envelope(b'{"type": "event", "length": 2}\n{}xx'), {}, 400),  # no newline after the payload
    (envelope(b'{"length": 2}\n{}'), {}, 400),  # no type
    (envelope(item(b"[1, 2]")), {}, 400),  # an event that is not an object
    (b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, 400),
    (envelope(item(rust_event())), {"Content-Encoding": "br"}, 415),
])
def test_malformed_envelopes(emu, body, headers, status):
    got, answer, _ = post(emu, body, headers=headers)
    assert got == status, answer
    assert "detail" in answer
    assert emu.events() == []


def test_unknown_routes(emu):
    assert post(emu, b"{}", "/api/42/minidump/")[0] == 404
    assert post(emu, b"{}", "/api/abc/envelope/")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    conn.request("GET", "/api/42/envelope/")
    assert conn.getresponse().status == 405
    conn.close()


def test_status_setting_fails_ingestion(emu):
    emu.settings({"status": 500})
    assert post(emu, envelope(item(rust_event())))[0] == 500
    emu.settings({"status": 429, "retry_after": 30})
    status, _, headers = post(emu, envelope(item(rust_event())))
    assert (status, headers["Retry-After"], headers["X-Sentry-Rate-Limits"]) == (429, "30", "30::organization")
    assert emu.events() == []
    assert [e["status"] for e in emu.envelopes()] == [500, 429]
    emu.reset({})
    assert post(emu, envelope(item(rust_event())))[0] == 200


def test_delay_lets_a_client_time_out(emu):
    emu.settings({"delay_seconds": 0.6})
    with pytest.raises(socket.timeout):
        post(emu, envelope(item(rust_event())), timeout=0.2)
    assert post(emu, envelope(item(rust_event())))[0] == 200


def test_bad_control_calls(emu):
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        emu.settings({"status_code": 500})
    assert exc_info.value.code == 400


# ------------------------------------------------------------ the real client


@contextlib.contextmanager
def sdk(emu, key="abc", **experiments):
    """The real client pointed at the emulator, in a scope of its own (breadcrumbs live in
    scopes, which outlive one init), closed (so flushed) at the end."""
    sentry_sdk.init(
        dsn=emu.dsn(key),
        default_integrations=False,
        auto_enabling_integrations=False,
        release="backline@test",
        environment="emulator",
        _experiments=experiments,
    )
    try:
        with sentry_sdk.isolation_scope():
            yield
    finally:
        sentry_sdk.get_client().close(timeout=10)


@pytest.mark.parametrize("experiments, encoding", [
    ({"transport_compression_algo": "gzip"}, "gzip"),
    ({"transport_compression_level": 0}, None),
], ids=["gzip", "plain"])
def test_sentry_sdk_event_with_breadcrumbs(emu, experiments, encoding):
    emu.reset({"project_id": "42", "public_key": "abc"})
    with sdk(emu, **experiments):
        sentry_sdk.add_breadcrumb(category="task", message="a.jpg: AccessDenied", level="error", data={"key": "a.jpg"})
        sentry_sdk.add_breadcrumb(category="task", message="b.jpg: timed out", level="error")
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("job", "photos")
            event_id = sentry_sdk.capture_message("Backline job photos finished with failed tasks", level="error")
    events = [e for e in emu.events() if e["event"].get("event_id") == event_id]
    assert len(events) == 1, emu.envelopes()
    event = events[0]["event"]
    assert event["message"] == "Backline job photos finished with failed tasks"
    assert event["level"] == "error"
    assert event["tags"]["job"] == "photos"
    assert (event["release"], event["environment"]) == ("backline@test", "emulator")
    assert [b["message"] for b in event["breadcrumbs"]["values"]] == ["a.jpg: AccessDenied", "b.jpg: timed out"]
    assert event["breadcrumbs"]["values"][0]["data"] == {"key": "a.jpg"}
    assert events[0]["envelope"]["event_id"] == event_id
    [env] = [e for e in emu.envelopes() if "event" in e["item_types"]]
    assert (env["status"], env["content_encoding"]) == (200, encoding)


def test_sentry_sdk_with_a_wrong_key_is_refused(emu):
    emu.reset({"project_id": "42", "public_key": "abc"})
    with sdk(emu, key="wrong"):
        sentry_sdk.capture_message("not for this project")
    assert emu.events() == []
    assert 403 in [e["status"] for e in emu.envelopes()]

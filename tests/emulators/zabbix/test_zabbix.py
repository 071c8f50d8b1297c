"""The trapper emulator driven by a small Zabbix sender written here (socket + struct),
framing requests every way the protocol allows; fixtures in conftest.py."""

import json
import re
import socket
import struct
import threading
import time
import urllib.error
import zlib

import pytest

INFO_RE = re.compile(r"^processed: (\d+); failed: (\d+); total: (\d+); seconds spent: \d+\.\d{6}$")


def frame(obj, flags=0x01):
    """A request as zabbix_sender frames it; flags 0x02 compresses, 0x04 uses 8-byte lengths."""
    data = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    reserved = 0
    if flags & 0x02:
        reserved, data = len(data), zlib.compress(data)
    fmt = "<BQQ" if flags & 0x04 else "<BII"
    return b"ZBXD" + struct.pack(fmt, flags, len(data), reserved) + data


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def exchange(port, raw, timeout=5.0):
    """Sends `raw`, reads one answer; returns (header bytes, JSON answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        header = recv_exact(sock, 13)
        length = struct.unpack("<I", header[5:9])[0]
        answer = json.loads(recv_exact(sock, length))
        assert sock.recv(1) == b"", "the server closes after one answer"
        return header, answer


def send(port, items, clock=None, **kw):
    request = {"request": "sender data", "data": items}
    if clock is not None:
        request["clock"] = clock
    _, answer = exchange(port, frame(request), **kw)
    return answer


def counts(answer):
    assert answer["response"] == "success", answer
    m = INFO_RE.match(answer["info"])
    assert m, answer["info"]
    return tuple(int(x) for x in m.groups())


def item(key, value, host="backup-host", **extra):
    return {"host": host, "key": key, "value": value, **extra}


def test_by_default_every_item_is_accepted_and_recorded_in_order(emu):
    answer = send(emu.port, [item("a", "1"), item("b", "2", clock=1700000001), item("c", "3", host="other")], clock=1700000000)
    assert counts(answer) == (3, 0, 3)
    got = emu.received()
    assert got["items"] == [
        {"host": "backup-host", "key": "a", "value": "1", "clock": 1700000000, "accepted": True},
        {"host": "backup-host", "key": "b", "value": "2", "clock": 1700000001, "accepted": True},
        {"host": "other", "key": "c", "value": "3", "clock": 1700000000, "accepted": True},
    ]
    assert got["requests"] == [{"processed": 3, "failed": 0, "total": 3}]


def test_unknown_keys_and_hosts_fail(emu):
    emu.reset({"hosts": {"backup-host": ["backline.heartbeat[photos]", "backline.exit_code[photos]"]}})
    answer = send(emu.port, [
        item("backline.heartbeat[photos]", "1"),
        item("backline.duration[photos]", "12"),  # key not configured
        item("backline.exit_code[photos]", "0", host="nobody"),  # host not configured
        item("backline.exit_code[photos]", "0"),
    ])
    assert counts(answer) == (2, 2, 4)
    got = emu.received()
    assert [(i["key"], i["accepted"]) for i in got["items"]] == [
        ("backline.heartbeat[photos]", True),
        ("backline.duration[photos]", False),
        ("backline.exit_code[photos]", False),
        ("backline.exit_code[photos]", True),
    ]
    assert got["requests"] == [{"processed": 2, "failed": 2, "total": 4}]
    send(emu.port, [item("x", "1")])
    assert emu.received()["requests"][-1] == {"processed": 0, "failed": 1, "total": 1}


def test_reset_clears_what_was_received_and_null_accepts_all(emu):
    emu.reset({"hosts": {"h": []}})
    assert counts(send(emu.port, [item("k", "v", host="h")])) == (0, 1, 1)
    emu.reset({"hosts": None})
    assert emu.received() == {"items": [], "requests": []}
    assert counts(send(emu.port, [item("k", "v", host="h")])) == (1, 0, 1)


def test_the_backline_frame_and_the_answer_header(emu):
    # Exactly what shared/src/notify/zabbix.rs sends: 4-byte length, 4 zero bytes, top-level clock.
    body = json.dumps({"request": "sender data", "data": [item("backline.exit_code[photos]", "0", clock=1700000000)], "clock": 1700000000})
    raw = b"ZBXD\x01" + len(body).to_bytes(4, "little") + b"\0\0\0\0" + body.encode()
    header, answer = exchange(emu.port, raw)
    assert header[:5] == b"ZBXD\x01" and header[9:13] == b"\0\0\0\0"
    assert counts(answer) == (1, 0, 1)


@pytest.mark.parametrize("flags", [0x03, 0x05, 0x07], ids=["compressed", "large", "large-compressed"])
def test_compressed_and_large_headers(emu, flags):
    request = {"request": "sender data", "data": [item("k", "v" * 1000)]}
    _, answer = exchange(emu.port, frame(request, flags))
    assert counts(answer) == (1, 0, 1)
    assert emu.received()["items"][0]["value"] == "v" * 1000


@pytest.mark.parametrize("raw, info", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "does not start with ZBXD"),
    (b"ZBXD\x00" + struct.pack("<II", 2, 0) + b"{}", "flags"),
    (frame(b"not json"), "JSON"),
    (frame({"request": "active checks", "host": "h"}), "unsupported request 'active checks'"),
    (frame({"request": "sender data"}), "data"),
    (b"ZBXD\x03" + struct.pack("<II", 4, 10) + b"xxxx", "decompress"),
])
def test_malformed_requests_get_a_failed_answer(emu, raw, info):
    header, answer = exchange(emu.port, raw)
    assert header[:5] == b"ZBXD\x01"
    assert answer["response"] == "failed"
    assert info in answer["info"]
    assert emu.received() == {"items": [], "requests": []}


def test_delay_lets_a_client_time_out(emu):
    emu.settings({"delay_seconds": 0.6})
    with pytest.raises(socket.timeout):
        send(emu.port, [item("k", "1")], timeout=0.2)
    started = time.monotonic()
    assert counts(send(emu.port, [item("k", "2")])) == (1, 0, 1)
    assert time.monotonic() - started >= 0.6
    emu.reset({})
    started = time.monotonic()
    send(emu.port, [item("k", "3")])
    assert time.monotonic() - started < 0.5, "reset clears the delay"


def test_close_without_answer(emu):
    emu.settings({"close_without_answer": True})
    with pytest.raises(EOFError, match="closed after 0"):
        send(emu.port, [item("k", "1")])
    # The items did arrive; only the answer is missing.
    assert emu.received()["items"][0]["value"] == "1"


def test_concurrent_senders(emu):
    answers = []
    threads = [threading.Thread(target=lambda i=i: answers.append(send(emu.port, [item("k", str(i))]))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [counts(a) for a in answers] == [(1, 0, 1)] * 8
    assert sorted(int(i["value"]) for i in emu.received()["items"]) == list(range(8))


@pytest.mark.parametrize("path, body", [
    ("settings", {"delay": 1}),
    ("reset", {"hosts": ["backup-host"]}),
    ("nothing", {}),
])
def test_bad_control_calls(emu, path, body):
    with pytest.raises(urllib.error.HTTPError) as exc_info:
        emu.control(path, body)
    assert exc_info.value.code in (400, 404)

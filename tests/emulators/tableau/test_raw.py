"""Raw HTTP checks of the XML shapes, the control API and the quirks TSC cannot show."""

import hashlib
import http.client
import threading
import xml.etree.ElementTree as ET

import pytest

from conftest import BIG_BYTES, DEFAULT_SITE, P_DEFAULT, WB_BADDATE, WB_BIG, WB_PRIVATE, WB_SUPERSTORE, WB_VENTES

NS = {"t": "http://tableau.com/api"}
API = "/api/3.19"
SITE = f"{API}/sites/{DEFAULT_SITE}"
BOUNDARY = "b0undary"


def call(emu, method, path, token=None, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    all_headers = dict(headers or {})
    if token:
        all_headers["X-Tableau-Auth"] = token
    conn.request(method, path, body=body, headers=all_headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.headers, data


def xml(data):
    return ET.fromstring(data)


def sign_in(emu, pat="backline", secret="pat-secret", site=""):
    body = (
        f'<tsRequest><credentials personalAccessTokenName="{pat}" personalAccessTokenSecret="{secret}">'
        f'<site contentUrl="{site}"/></credentials></tsRequest>'
    )
    status, _, data = call(emu, "POST", f"{API}/auth/signin", body=body.encode())
    assert status == 200, data
    return xml(data).find("t:credentials", NS).get("token")


def multipart(parts):
    out = b""
    for name, filename, data in parts:
        disposition = f'name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MIXED = {"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"}


def publish_payload(name):
    return f'<tsRequest><workbook name="{name}"><project id="{P_DEFAULT}"/></workbook></tsRequest>'.encode()


def test_serverinfo_signin_and_error_shapes(emu):
    status, _, data = call(emu, "GET", f"{API}/serverinfo")
    assert status == 200 and xml(data).find("t:serverInfo/t:restApiVersion", NS).text == "3.19"
    token = sign_in(emu)
    root = xml(call(emu, "POST", f"{API}/auth/signin", body=b"x")[2])
    assert root.find("t:error", NS).get("code") == "400000"
    status, _, data = call(emu, "GET", f"{SITE}/workbooks/nope", token)
    error = xml(data).find("t:error", NS)
    assert status == 404 and error.get("code") == "404006"
    assert error.find("t:summary", NS).text and error.find("t:detail", NS).text
    status, _, data = call(emu, "GET", f"{SITE}/workbooks")
    assert status == 401 and xml(data).find("t:error", NS).get("code") == "401000"
    assert call(emu, "GET", f"{API}/sites/{DEFAULT_SITE}/workbooks", token + "x")[0] == 401
    # A token is bound to its site.
    status, _, data = call(emu, "GET", f"{API}/sites/6b7179ba-b82b-4f0f-91ed-812074ac5da6/projects", token)
    assert status == 401 and xml(data).find("t:error", NS).get("code") == "401002"


def test_workbook_list_shapes(emu):
    token = sign_in(emu)
    _, _, data = call(emu, "GET", f"{SITE}/workbooks?pageSize=100&pageNumber=1&fields=_all_", token)
    root = xml(data)
    assert root.find("t:pagination", NS).attrib == {"pageNumber": "1", "pageSize": "100", "totalAvailable": "29"}
    books = {w.get("id"): w for w in root.findall("t:workbooks/t:workbook", NS)}
    assert books[WB_PRIVATE].find("t:project", NS) is None
    assert books[WB_SUPERSTORE].find("t:owner", NS).get("name") == "cassie"
    assert [t.get("label") for t in books[WB_SUPERSTORE].findall("t:tags/t:tag", NS)] == ["Safari", "Sample"]
    assert books[WB_BADDATE].get("updatedAt") == "2016-06-31T00:00:00Z"
    assert books[WB_BIG].get("size") == "25"  # whole MB, rounded up
    _, _, data = call(emu, "GET", f"{SITE}/workbooks?filter=updatedAt:gt:2016-08-01T00:00:00Z,name:eq:Superstore", token)
    plain = xml(data).findall("t:workbooks/t:workbook", NS)
    assert [w.get("id") for w in plain] == [WB_SUPERSTORE]
    assert "name" not in plain[0].find("t:owner", NS).attrib


def test_content_dispositions_and_generated_stream(emu):
    token = sign_in(emu)
    _, headers, _ = call(emu, "GET", f"{SITE}/workbooks/{WB_VENTES}/content", token)
    assert headers["Content-Disposition"] == (
        "name=\"tableau_workbook\"; filename*=UTF-8''Ventes%2C%20Q1%20%C3%A9t%C3%A9.twbx"
    )
    status, headers, data = call(emu, "GET", f"{SITE}/workbooks/{WB_BIG}/content?includeExtract=true", token)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert len(data) == BIG_BYTES == int(headers["Content-Length"])
    info = emu.control(f"workbooks/{DEFAULT_SITE}/{WB_BIG}")
    assert hashlib.sha256(data).hexdigest() == info["content"]["sha256"]


def test_throttle_and_truncate_faults(emu):
    token = sign_in(emu)
    emu.control("faults", {"throttle": {"count": 2, "retry_after": 3, "path_contains": "/content"}})
    for _ in range(2):
        status, headers, data = call(emu, "GET", f"{SITE}/workbooks/{WB_VENTES}/content", token)
        assert status == 429 and headers["Retry-After"] == "3"
        assert xml(data).find("t:error", NS).get("code") == "429000"
    assert call(emu, "GET", f"{SITE}/workbooks/{WB_VENTES}/content", token)[0] == 200
    emu.control("faults", {"truncate": {"after_bytes": 1000, "path_contains": WB_BIG}})
    with pytest.raises(http.client.IncompleteRead):
        call(emu, "GET", f"{SITE}/workbooks/{WB_BIG}/content", token)
    assert call(emu, "GET", f"{SITE}/workbooks/{WB_BIG}/content", token)[0] == 200
    emu.control("faults", {"error": {"status": 503, "method": "GET"}, "delay": {"seconds": 0.2}})
    assert call(emu, "GET", f"{SITE}/projects", token)[0] == 503
    assert call(emu, "GET", f"{SITE}/projects", token)[0] == 200


def test_job_shows_finish_code_before_completed_at(emu):
    token = sign_in(emu)
    body = multipart([("request_payload", None, publish_payload("Async")), ("tableau_workbook", "Async.twb", b"<wb/>")])
    status, _, data = call(emu, "POST", f"{SITE}/workbooks?asJob=true", token, body, MIXED)
    job = xml(data).find("t:job", NS)
    assert status == 202 and job.get("type") == "PublishWorkbook" and job.get("mode") == "Asynchronous"
    seen = []
    for _ in range(4):
        polled = xml(call(emu, "GET", f"{SITE}/jobs/{job.get('id')}", token)[2]).find("t:job", NS)
        seen.append((polled.get("finishCode"), polled.get("completedAt") is not None))
        names = [w.get("name") for w in xml(call(emu, "GET", f"{SITE}/workbooks?filter=name:eq:Async", token)[2]).iter()]
        assert ("Async" in names) == seen[-1][1]  # the workbook appears when the job completes
    assert seen == [(None, False), ("0", False), ("0", True), ("0", True)]


def test_chunked_upload_with_chunked_transfer_encoding(emu):
    token = sign_in(emu)
    status, _, data = call(emu, "POST", f"{SITE}/fileUploads", token)
    upload = xml(data).find("t:fileUpload", NS).get("uploadSessionId")
    assert status == 201 and ":" in upload
    chunk = b"z" * (3 << 20)
    bad = multipart([("request_payload", None, b"<x/>"), ("tableau_file", "file", chunk)])
    assert xml(call(emu, "PUT", f"{SITE}/fileUploads/{upload}", token, bad, MIXED)[2])[0].get("code") == "400019"
    for total_mb in (3, 6):
        body = multipart([("request_payload", None, b""), ("tableau_file", "file", chunk)])
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))  # no Content-Length: chunked
        conn.request("PUT", f"{SITE}/fileUploads/{upload}", pieces, {**MIXED, "X-Tableau-Auth": token})
        resp = conn.getresponse()
        assert resp.status == 200 and xml(resp.read()).find("t:fileUpload", NS).get("fileSize") == str(total_mb)
        conn.close()
    body = multipart([("request_payload", None, publish_payload("Chunked"))])
    path = f"{SITE}/workbooks?uploadSessionId={upload}&workbookType=twbx&overwrite=false"
    status, _, data = call(emu, "POST", path, token, body, MIXED)
    assert status == 201 and xml(data).find("t:workbook", NS).get("name") == "Chunked"
    assert emu.state()["published"][0]["sha256"] == hashlib.sha256(chunk * 2).hexdigest()
    assert call(emu, "POST", path, token, body, MIXED)[0] == 404  # the upload session is used up


def test_control_api_updates_and_deletes_workbooks(emu):
    token = sign_in(emu)
    emu.control(
        "workbooks",
        {"site": "", "workbook": {"id": WB_SUPERSTORE, "updatedAt": "2030-01-01T00:00:00Z", "text": "new bytes"}},
    )
    root = xml(call(emu, "GET", f"{SITE}/workbooks/{WB_SUPERSTORE}", token)[2])
    assert root.find("t:workbook", NS).get("updatedAt") == "2030-01-01T00:00:00Z"
    assert root.find("t:workbook/t:project", NS).get("name") == "default"  # untouched fields stay
    assert call(emu, "GET", f"{SITE}/workbooks/{WB_SUPERSTORE}/content", token)[2] == b"new bytes"
    emu.control(f"workbooks/{DEFAULT_SITE}/{WB_SUPERSTORE}", method="DELETE")
    assert call(emu, "GET", f"{SITE}/workbooks/{WB_SUPERSTORE}", token)[0] == 404


def test_session_conflicts_under_concurrency(emu):
    shared = sign_in(emu)
    errors = []

    def worker(token):
        for _ in range(10):
            status = call(emu, "GET", f"{SITE}/workbooks?pageSize=5", token)[0]
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=worker, args=(shared,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and emu.state()["session_conflicts"] == 0
    # The mistake the counter exists for: every worker signing in with the same PAT.
    tokens = [sign_in(emu) for _ in range(4)]
    threads = [threading.Thread(target=worker, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 30 and emu.state()["session_conflicts"] == 30

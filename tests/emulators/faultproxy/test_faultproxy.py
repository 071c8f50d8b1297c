"""The fault proxy in front of moto_server, driven by boto3 (fixtures in conftest.py): plain
forwarding, the operation names, every fault seen (no retries) and survived (retries),
conditional copies, and the control API."""

import hashlib
import http.client
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from . import classify
from .conftest import STALL_SECONDS, Proxy

BUCKET = "backline-test"
MIB = 1024 * 1024
TABLEAU_CONTENT = ("/api/3.19/sites/9a8b7c6d-0000-4000-8000-123456789abc"
                   "/workbooks/1d0304cd-3796-429f-b815-7258370b9b74/content")
# An S3 request's Authorization as moto sees it: moto reads the scope, checks no signature.
S3_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"


def pattern(size):
    """`size` bytes that differ from block to block, so a shifted or cut body shows."""
    block = hashlib.sha256(str(size).encode()).digest() * 32
    return (block * (size // len(block) + 1))[:size]


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def s3(proxy):
    client = proxy.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def put_source(s3, key, body):
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]


# ---------------------------------------------------------------------- plain forwarding
def test_s3_objects_pass_unaltered(proxy, s3):
    for key, size in (("empty", 0), ("kib", 1024), ("big", 12 * MIB)):
        body = pattern(size)
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
        assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size
    listed = s3.list_objects_v2(Bucket=BUCKET)
    assert sorted(o["Key"] for o in listed["Contents"]) == ["big", "empty", "kib"]
    stats = proxy.stats()
    assert stats["requests"] == {"CreateBucket": 1, "PutObject": 3, "GetObject": 3, "HeadObject": 3,
                                 "ListObjectsV2": 1}
    assert stats["faults"] == {} and stats["injected"] == [] and stats["preconditions_failed"] == 0


def test_multipart_upload_passes_unaltered(proxy, s3):
    parts = [pattern(5 * MIB), pattern(1000)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="multi")["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key="multi", UploadId=upload, PartNumber=n, Body=part)["ETag"]
             for n, part in enumerate(parts, 1)]
    assert len(s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]) == 1
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="multi", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    assert s3.get_object(Bucket=BUCKET, Key="multi")["Body"].read() == b"".join(parts)
    requests = proxy.stats()["requests"]
    assert requests["CreateMultipartUpload"] == 1 and requests["UploadPart"] == 2
    assert requests["ListMultipartUploads"] == 1 and requests["CompleteMultipartUpload"] == 1


def test_sqs_and_dynamodb_pass_unaltered(proxy):
    sqs = proxy.client("sqs")
    queue = sqs.create_queue(QueueName="backline-events")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody='{"k": "é"}')
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in messages] == ['{"k": "é"}']

    dynamodb = proxy.client("dynamodb")
    make_table(dynamodb)
    dynamodb.put_item(TableName="jobs", Item={"id": {"S": "a"}, "n": {"N": "7"}})
    assert dynamodb.get_item(TableName="jobs", Key={"id": {"S": "a"}})["Item"] == {"id": {"S": "a"}, "n": {"N": "7"}}
    requests = proxy.stats()["requests"]
    for operation in ("CreateQueue", "SendMessage", "ReceiveMessage", "CreateTable", "PutItem", "GetItem"):
        assert requests[operation] == 1, (operation, requests)


def test_chunked_request_on_a_kept_alive_connection(proxy, s3):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    chunks = [b"hello ", pattern(100_000), b" world"]
    conn.request("PUT", f"/{BUCKET}/chunked", body=iter(chunks), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked", "Authorization": S3_AUTH})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    response.read()
    sock = conn.sock
    for _ in range(3):  # the same socket serves every request
        conn.request("GET", f"/{BUCKET}/chunked", headers={"Authorization": S3_AUTH})
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b"".join(chunks)
    assert conn.sock is sock
    conn.close()


def make_table(dynamodb):
    dynamodb.create_table(TableName="jobs", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")


# ---------------------------------------------------------------------- classification
S3_SIGNED = {"authorization": S3_AUTH, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
COPY = {**S3_SIGNED, "x-amz-copy-source": "/src-bucket/a%20b.txt"}


@pytest.mark.parametrize("method, target, headers, operation", [
    ("HEAD", "/bkt/a/b.txt", S3_SIGNED, "HeadObject"),
    ("HEAD", "/bkt", S3_SIGNED, "HeadBucket"),
    ("GET", "/bkt?list-type=2&prefix=a%2F", S3_SIGNED, "ListObjectsV2"),
    ("GET", "/bkt/?prefix=a&delimiter=%2F", S3_SIGNED, "ListObjects"),
    ("GET", "/bkt?versions&prefix=a", S3_SIGNED, "ListObjectVersions"),
    ("GET", "/bkt?uploads", S3_SIGNED, "ListMultipartUploads"),
    ("GET", "/bkt/k?tagging", S3_SIGNED, "GetObjectTagging"),
    ("PUT", "/bkt/k?tagging", S3_SIGNED, "PutObjectTagging"),
    ("DELETE", "/bkt/k?tagging", S3_SIGNED, "DeleteObjectTagging"),
    ("POST", "/bkt/k?uploads", S3_SIGNED, "CreateMultipartUpload"),
    ("PUT", "/bkt/k?partNumber=2&uploadId=u1", COPY, "UploadPartCopy"),
    ("PUT", "/bkt/k?partNumber=2&uploadId=u1", S3_SIGNED, "UploadPart"),
    ("GET", "/bkt/k?uploadId=u1", S3_SIGNED, "ListParts"),
    ("POST", "/bkt/k?uploadId=u1", S3_SIGNED, "CompleteMultipartUpload"),
    ("DELETE", "/bkt/k?uploadId=u1", S3_SIGNED, "AbortMultipartUpload"),
    ("PUT", "/bkt/k", COPY, "CopyObject"),
    ("PUT", "/bkt/dir/k", S3_SIGNED, "PutObject"),
    ("PUT", "/bkt", S3_SIGNED, "CreateBucket"),
    ("PUT", "/bkt?versioning", S3_SIGNED, "PutBucketVersioning"),
    ("PUT", "/bkt?lifecycle", S3_SIGNED, "PutBucketLifecycleConfiguration"),
    ("GET", "/bkt?versioning", S3_SIGNED, "GetBucketVersioning"),
    ("GET", "/bkt?location", S3_SIGNED, "GetBucketLocation"),
    ("GET", "/bkt?object-lock", S3_SIGNED, "GetObjectLockConfiguration"),
    ("DELETE", "/bkt", S3_SIGNED, "DeleteBucket"),
    ("GET", "/bkt/k", S3_SIGNED, "GetObject"),
    ("GET", "/bkt/k?versionId=v1&response-content-type=text%2Fplain", S3_SIGNED, "GetObject"),
    ("GET", "/bkt/k?attributes", S3_SIGNED, "GetObjectAttributes"),
    ("POST", "/bkt/k?restore", S3_SIGNED, "RestoreObject"),
    ("POST", "/bkt?delete", S3_SIGNED, "DeleteObjects"),
    ("DELETE", "/bkt/k?versionId=v1", S3_SIGNED, "DeleteObject"),
    ("GET", "/", S3_SIGNED, "ListBuckets"),
    # The Rust SDK names its operation in x-id; it wins.
    ("PUT", "/bkt/k?x-id=CopyObject", COPY, "CopyObject"),
    ("GET", "/bkt/k?x-id=GetObject", S3_SIGNED, "GetObject"),
    ("PUT", "/bkt/k?partNumber=1&uploadId=u&x-id=UploadPart", S3_SIGNED, "UploadPart"),
    # Unsigned S3 (urllib, curl): still path-style S3.
    ("GET", "/bkt/k", {}, "GetObject"),
    ("PUT", "/bkt/k", {"x-amz-copy-source": "bkt/src"}, "CopyObject"),
])
def test_classify_s3(method, target, headers, operation):
    path, _, query = target.partition("?")
    assert classify.classify(method, path, query, headers) == operation


def test_classify_json_query_and_other_protocols():
    json_headers = {"x-amz-target": "DynamoDB_20120810.PutItem", "content-type": "application/x-amz-json-1.0"}
    assert classify.classify("POST", "/", "", json_headers) == "PutItem"
    assert classify.protocol("/", "", json_headers) == "json"
    sqs = {"x-amz-target": "AmazonSQS.SendMessage", "content-type": "application/x-amz-json-1.0"}
    assert classify.classify("POST", "/", "", sqs) == "SendMessage"
    form = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
            "authorization": S3_AUTH.replace("/s3/", "/sqs/")}
    body = b"Action=SendMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2Fx%2F1%2Fq&MessageBody=hi"
    assert classify.classify("POST", "/123456789012/q", "", form, body) == "SendMessage"
    assert classify.protocol("/123456789012/q", "", form, body) == "query"
    unsigned_form = {"content-type": "application/x-www-form-urlencoded"}
    assert classify.classify("POST", "/123456789012/q", "", unsigned_form, b"Action=ReceiveMessage") == "ReceiveMessage"
    # Tableau: unsigned, under /api/, ids replaced.
    operation = classify.classify("GET", TABLEAU_CONTENT, "", {"x-tableau-auth": "t"})
    assert operation == "GET /api/3.19/sites/*/workbooks/*/content"
    assert classify.protocol(TABLEAU_CONTENT, "", {}) == "tableau"
    # QuickSight: signed for quicksight, restJson1.
    quicksight = {"authorization": S3_AUTH.replace("/s3/", "/quicksight/"), "content-type": "application/json"}
    path = "/accounts/123456789012/asset-bundle-export-jobs/export"
    assert classify.classify("POST", path, "", quicksight) == "POST /accounts/*/asset-bundle-export-jobs/export"
    assert classify.protocol(path, "", quicksight) == "restjson"
    assert classify.protocol("/bkt/k", "", S3_SIGNED) == "s3"


# ---------------------------------------------------------------------- status faults
def test_nth_slowdown_seen_without_retries(proxy, s3):
    proxy.rules({"name": "s3-slowdown", "fault": "slowdown", "operations": ["PutObject"], "nth": [1]})
    client = proxy.client("s3", attempts=1)
    with pytest.raises(ClientError) as excinfo:
        client.put_object(Bucket=BUCKET, Key="k", Body=b"first")
    assert error_code(excinfo) == ("SlowDown", 503)
    client.put_object(Bucket=BUCKET, Key="k", Body=b"second")
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"second"
    stats = proxy.stats()
    assert stats["faults"] == {"s3-slowdown": 1} and stats["faults_by_kind"] == {"slowdown": 1}
    assert stats["injected"] == [{"rule": "s3-slowdown", "fault": "slowdown", "operation": "PutObject",
                                  "method": "PUT", "path": f"/{BUCKET}/k", "n": 1}]
    assert stats["requests"]["PutObject"] == 2


def test_nth_slowdown_survived_with_retries(proxy, s3):
    proxy.rules({"name": "s3-slowdown", "fault": "slowdown", "operations": ["PutObject"], "nth": [1]})
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"payload")
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"payload"
    stats = proxy.stats()
    assert stats["faults"] == {"s3-slowdown": 1} and stats["requests"]["PutObject"] == 2


def test_internal_error_after_the_request_took_effect(proxy, s3):
    proxy.rules({"name": "lost-answer", "fault": "internal", "operations": ["PutObject"], "nth": [1], "when": "after"})
    with pytest.raises(ClientError) as excinfo:
        proxy.client("s3", attempts=1).put_object(Bucket=BUCKET, Key="k", Body=b"landed")
    assert error_code(excinfo) == ("InternalError", 500)
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"landed"


def test_rate_is_deterministic_for_a_seed(proxy, s3):
    def failures():
        proxy.reset({"seed": 7, "rules": [{"name": "coin", "fault": "internal", "rate": 0.5,
                                           "operations": ["PutObject"]}]})
        client = proxy.client("s3", attempts=1)
        failed = 0
        for i in range(40):
            try:
                client.put_object(Bucket=BUCKET, Key=f"k{i}", Body=b"x")
            except ClientError:
                failed += 1
        assert proxy.stats()["faults"] == ({"coin": failed} if failed else {})
        return failed

    rng = random.Random(7)
    expected = sum(rng.random() < 0.5 for _ in range(40))  # one draw per matching request
    assert 0 < expected < 40
    assert failures() == expected
    assert failures() == expected


def test_max_caps_a_rule_and_first_firing_rule_wins(proxy, s3):
    proxy.rules({"name": "always", "fault": "internal", "rate": 1, "max": 2, "operations": ["PutObject"]},
                {"name": "third", "fault": "slowdown", "nth": [2, 3], "operations": ["PutObject"]})
    client = proxy.client("s3", attempts=1)
    codes = []
    for i in range(4):
        try:
            client.put_object(Bucket=BUCKET, Key=f"k{i}", Body=b"x")
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    # 1st, 2nd: "always"; its cap reached, the 3rd is "third"'s (whose 2nd was taken); 4th passes.
    assert codes == ["InternalError", "InternalError", "SlowDown", "ok"]
    assert proxy.stats()["faults"] == {"always": 2, "third": 1}


def test_dynamodb_throttling_seen_and_survived(proxy):
    make_table(proxy.client("dynamodb"))
    rule = {"name": "ddb-throttle", "fault": "throttling", "operations": ["PutItem"], "nth": [1]}
    proxy.rules(rule)
    with pytest.raises(ClientError) as excinfo:
        proxy.client("dynamodb", attempts=1).put_item(TableName="jobs", Item={"id": {"S": "a"}})
    assert error_code(excinfo) == ("ThrottlingException", 400)

    proxy.rules(rule)  # a new rule: its count starts again
    dynamodb = proxy.client("dynamodb")
    dynamodb.put_item(TableName="jobs", Item={"id": {"S": "b"}})
    assert dynamodb.get_item(TableName="jobs", Key={"id": {"S": "b"}})["Item"] == {"id": {"S": "b"}}
    assert proxy.stats()["faults"] == {"ddb-throttle": 2}


def test_sqs_and_s3_throttling_shapes(proxy, s3):
    sqs = proxy.client("sqs", attempts=1)
    queue = sqs.create_queue(QueueName="q1")["QueueUrl"]
    proxy.rules({"name": "t", "fault": "throttling", "operations": ["SendMessage", "PutObject"], "nth": [1, 2]})
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue, MessageBody="m")
    assert error_code(excinfo) == ("ThrottlingException", 400)
    with pytest.raises(ClientError) as excinfo:
        proxy.client("s3", attempts=1).put_object(Bucket=BUCKET, Key="k", Body=b"x")
    assert error_code(excinfo) == ("Throttling", 503)


# ---------------------------------------------------------------------- connection faults
CONNECTION_ERRORS = (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)


def test_reset_before_the_request_reaches_the_upstream(proxy, s3):
    proxy.rules({"name": "rst", "fault": "reset", "operations": ["PutObject"], "nth": [1]})
    with pytest.raises(CONNECTION_ERRORS):
        proxy.client("s3", attempts=1).put_object(Bucket=BUCKET, Key="k", Body=b"never")
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=BUCKET, Key="k")
    assert error_code(excinfo)[1] == 404
    assert proxy.stats()["faults_by_kind"] == {"reset": 1}


def test_reset_after_the_request_took_effect(proxy, s3):
    proxy.rules({"name": "rst", "fault": "reset", "operations": ["PutObject"], "nth": [1], "when": "after"})
    with pytest.raises(CONNECTION_ERRORS):
        proxy.client("s3", attempts=1).put_object(Bucket=BUCKET, Key="k", Body=b"landed")
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"landed"


def test_stall_times_the_client_out_and_blocks_nothing_else(proxy, s3):
    s3.put_object(Bucket=BUCKET, Key="slow", Body=b"s")
    proxy.rules({"name": "hang", "fault": "stall", "operations": ["GetObject"], "path": "/slow$", "nth": [1]})
    impatient = proxy.client("s3", attempts=1, read_timeout=1, connect_timeout=1)
    outcome = []

    def stalled_get():
        try:
            impatient.get_object(Bucket=BUCKET, Key="slow")
            outcome.append("answered")
        except Exception as exc:  # checked below
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=stalled_get)
    thread.start()
    time.sleep(0.2)  # the stalled request is in
    for i in range(5):  # others are served while it hangs
        s3.put_object(Bucket=BUCKET, Key=f"other{i}", Body=b"o")
        assert s3.get_object(Bucket=BUCKET, Key=f"other{i}")["Body"].read() == b"o"
    assert time.monotonic() - started < STALL_SECONDS
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], botocore.exceptions.ReadTimeoutError), outcome
    assert proxy.stats()["faults"] == {"hang": 1}


def test_short_body_breaks_the_read(proxy, s3):
    body = pattern(300_000)
    s3.put_object(Bucket=BUCKET, Key="k", Body=body)
    proxy.rules({"name": "cut", "fault": "short_body", "operations": ["GetObject"], "nth": [1]})
    response = proxy.client("s3", attempts=1).get_object(Bucket=BUCKET, Key="k")
    assert response["ContentLength"] == len(body)
    with pytest.raises((botocore.exceptions.IncompleteReadError, botocore.exceptions.ResponseStreamingError)):
        response["Body"].read()
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == body
    assert proxy.stats()["injected"][0]["fault"] == "short_body"


# ---------------------------------------------------------------------- conditional copies
def test_copy_object_if_match_is_enforced(proxy, s3):
    etag = put_source(s3, "src", b"source body")
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="dst", CopySource={"Bucket": BUCKET, "Key": "src"},
                       CopySourceIfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_code(excinfo) == ("PreconditionFailed", 412)
    assert excinfo.value.response["Error"].get("Condition") == "x-amz-copy-source-If-Match"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="dst")
    s3.copy_object(Bucket=BUCKET, Key="dst", CopySource={"Bucket": BUCKET, "Key": "src"}, CopySourceIfMatch=etag)
    assert s3.get_object(Bucket=BUCKET, Key="dst")["Body"].read() == b"source body"
    # Unquoted, the ETag matches too; If-None-Match with it fails.
    s3.copy_object(Bucket=BUCKET, Key="dst2", CopySource=f"{BUCKET}/src", CopySourceIfMatch=etag.strip('"'))
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="dst3", CopySource=f"/{BUCKET}/src", CopySourceIfNoneMatch=etag)
    assert error_code(excinfo) == ("PreconditionFailed", 412)
    assert proxy.stats()["preconditions_failed"] == 2


def test_upload_part_copy_if_match_is_enforced(proxy, s3):
    source = pattern(6 * MIB)
    etag = put_source(s3, "dir/big source", source)  # a space and a slash, URL-encoded on the way
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="dst")["UploadId"]
    copy = {"Bucket": BUCKET, "Key": "dst", "UploadId": upload, "PartNumber": 1,
            "CopySource": {"Bucket": BUCKET, "Key": "dir/big source"}}
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part_copy(**copy, CopySourceIfMatch='"stale"')
    assert error_code(excinfo) == ("PreconditionFailed", 412)
    part = s3.upload_part_copy(**copy, CopySourceIfMatch=etag)["CopyPartResult"]["ETag"]
    s3.complete_multipart_upload(Bucket=BUCKET, Key="dst", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part}]})
    assert s3.get_object(Bucket=BUCKET, Key="dst")["Body"].read() == source
    stats = proxy.stats()
    assert stats["preconditions_failed"] == 1 and stats["requests"]["UploadPartCopy"] == 2


def test_replace_source_changes_the_object_before_the_copy(proxy, s3):
    old = put_source(s3, "src", b"old content")
    proxy.rules({"name": "change-source", "fault": "replace_source", "operations": ["CopyObject", "UploadPartCopy"],
                 "nth": [1], "body": "new content"})
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="dst", CopySource={"Bucket": BUCKET, "Key": "src"}, CopySourceIfMatch=old)
    assert error_code(excinfo) == ("PreconditionFailed", 412)
    current = s3.get_object(Bucket=BUCKET, Key="src")
    assert current["Body"].read() == b"new content"
    s3.copy_object(Bucket=BUCKET, Key="dst", CopySource={"Bucket": BUCKET, "Key": "src"},
                   CopySourceIfMatch=current["ETag"])
    assert s3.get_object(Bucket=BUCKET, Key="dst")["Body"].read() == b"new content"
    stats = proxy.stats()
    assert stats["faults"] == {"change-source": 1} and stats["faults_by_kind"] == {"replace_source": 1}
    assert stats["preconditions_failed"] == 1


def test_replace_source_with_a_big_body_under_upload_part_copy(proxy, s3):
    old = put_source(s3, "src", b"small")
    proxy.rules({"name": "grow", "fault": "replace_source", "operations": ["UploadPartCopy"],
                 "nth": [1], "body_repeat": ["0123456789", 600_000]})
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="dst")["UploadId"]
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part_copy(Bucket=BUCKET, Key="dst", UploadId=upload, PartNumber=1,
                            CopySource={"Bucket": BUCKET, "Key": "src"}, CopySourceIfMatch=old)
    assert error_code(excinfo) == ("PreconditionFailed", 412)
    assert s3.head_object(Bucket=BUCKET, Key="src")["ContentLength"] == 6_000_000


# ---------------------------------------------------------------------- control API
def control_error(proxy, path, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{proxy.url}/_emulator/{path}", data=raw, method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    return json.loads(excinfo.value.read())


@pytest.mark.parametrize("rule, field", [
    ({"rate": 0.5}, "rules[0].fault"),
    ({"fault": "explode", "rate": 0.5}, "rules[0].fault"),
    ({"fault": "slowdown", "rate": 1.5}, "rules[0].rate"),
    ({"fault": "slowdown", "rate": True}, "rules[0].rate"),
    ({"fault": "slowdown", "rate": 0.5, "nth": [1]}, "rules[0].rate"),
    ({"fault": "slowdown"}, "rules[0].rate"),
    ({"fault": "slowdown", "nth": [0]}, "rules[0].nth"),
    ({"fault": "slowdown", "nth": 3}, "rules[0].nth"),
    ({"fault": "slowdown", "nth": [1], "operations": "PutObject"}, "rules[0].operations"),
    ({"fault": "slowdown", "nth": [1], "path": "(unclosed"}, "rules[0].path"),
    ({"fault": "slowdown", "nth": [1], "when": "later"}, "rules[0].when"),
    ({"fault": "short_body", "nth": [1], "when": "before"}, "rules[0].when"),
    ({"fault": "slowdown", "nth": [1], "max": 0}, "rules[0].max"),
    ({"fault": "slowdown", "nth": [1], "colour": "red"}, "rules[0].colour"),
    ({"fault": "replace_source", "nth": [1]}, "rules[0].body"),
    ({"fault": "slowdown", "nth": [1], "body": "x"}, "rules[0].body"),
])
def test_bad_rules_are_refused_naming_the_field(proxy, rule, field):
    answer = control_error(proxy, "rules", {"rules": [{"name": "ok", "fault": "internal", "rate": 0}, rule]})
    assert answer["field"] == field.replace("rules[0]", "rules[1]"), answer
    assert answer["error"].startswith(answer["field"] + ": ")


def test_bad_control_bodies(proxy):
    assert control_error(proxy, "reset", b"{not json")["field"] == "body"
    assert control_error(proxy, "reset", [1])["field"] == "body"
    assert control_error(proxy, "reset", {"seed": "7"})["field"] == "seed"
    assert control_error(proxy, "reset", {"rule": []})["field"] == "rule"
    assert control_error(proxy, "rules", {})["field"] == "rules"
    assert control_error(proxy, "rules", {"rules": {}})["field"] == "rules"
    both = [{"name": "a", "fault": "internal", "rate": 0}, {"name": "a", "fault": "internal", "rate": 0}]
    assert control_error(proxy, "rules", {"rules": both})["field"] == "rules[1].name"


def test_control_api(proxy, s3):
    assert proxy.control("health") == {"ok": True}
    assert proxy.rules({"name": "r", "fault": "internal", "rate": 0})["rules"] == ["r"]
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    control_error(proxy, "rules", {"rules": [{"fault": "nope", "rate": 0}]})
    assert [rule["name"] for rule in proxy.control("rules")["rules"]] == ["r"]  # a refused body changes nothing
    proxy.rules()  # new rules keep the counters
    assert proxy.stats()["requests"] == {"CreateBucket": 1, "PutObject": 1}
    proxy.control("stats", method="DELETE")
    assert proxy.stats() == {"requests": {}, "faults": {}, "faults_by_kind": {}, "injected": [],
                             "preconditions_failed": 0}
    unnamed = proxy.reset({"rules": [{"fault": "slowdown", "nth": [1]}]})
    assert unnamed["rules"] == ["slowdown-1"]
    proxy.control("rules", method="DELETE")
    assert proxy.control("rules") == {"rules": []}


# ---------------------------------------------------------------------- other upstreams
class ChunkedStub(BaseHTTPRequestHandler):
    """An upstream that answers every request 200 with a chunked JSON body (moto never chunks)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        pieces = [json.dumps({"path": self.path}).encode()[:-1], b', "pad": "', b"z" * 200_000, b'"}']
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = _answer


@pytest.fixture(scope="module")
def stub_proxy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChunkedStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = Proxy("faultproxy", "--upstream", f"http://127.0.0.1:{server.server_address[1]}")
    yield proxy
    proxy.stop()
    server.shutdown()


@pytest.fixture
def stub(stub_proxy):
    stub_proxy.reset({})
    return stub_proxy


def raw_get(proxy, path):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body




def test_chunked_upstream_answer_is_relayed_with_a_length(stub):
    response, body = raw_get(stub, TABLEAU_CONTENT)
    assert response.status == 200 and response.getheader("Transfer-Encoding") is None
    assert int(response.getheader("Content-Length")) == len(body)
    assert json.loads(body)["path"] == TABLEAU_CONTENT and len(json.loads(body)["pad"]) == 200_000
    assert stub.stats()["requests"] == {"GET /api/3.19/sites/*/workbooks/*/content": 1}


def test_tableau_throttling_by_path(stub):
    stub.rules({"name": "tableau-429", "fault": "throttling", "path": r"/workbooks/[^/]+/content$", "nth": [1]})
    response, body = raw_get(stub, TABLEAU_CONTENT)
    assert response.status == 429 and response.getheader("Retry-After") == "1"
    assert b'<error code="429000">' in body and b"<summary>Too Many Requests</summary>" in body
    assert raw_get(stub, TABLEAU_CONTENT)[0].status == 200
    assert stub.stats()["injected"][0]["path"] == TABLEAU_CONTENT


def test_quicksight_throttling_seen_and_survived(stub):
    stub.rules({"name": "qs", "fault": "throttling", "path": "^/accounts/", "nth": [1, 2]})
    with pytest.raises(ClientError) as excinfo:
        stub.client("quicksight", attempts=1).list_dashboards(AwsAccountId="123456789012")
    assert error_code(excinfo) == ("ThrottlingException", 429)
    stub.client("quicksight").list_dashboards(AwsAccountId="123456789012")  # 2nd throttled, 3rd passes
    assert stub.stats()["faults"] == {"qs": 2}
    assert stub.stats()["requests"] == {"GET /accounts/*/dashboards": 3}


def test_reset_is_a_tcp_rst(stub):
    stub.rules({"fault": "reset", "path": "^/rst$", "nth": [1]})
    with socket.create_connection(("127.0.0.1", stub.port), timeout=5) as sock:
        sock.sendall(b"GET /rst HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):  # a FIN would read as b""
            sock.recv(1)

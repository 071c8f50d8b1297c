"""What a proxied request is: its operation name (what rules match on) and its wire protocol
(what shape an injected error takes).  Pure functions of the request, unit-tested on their own.

`headers` is any mapping with lower-case names (see `lower_headers`)."""

import re
import urllib.parse

# A SigV4 credential scope, in an Authorization header or a presigned URL's X-Amz-Credential:
# <key>/<date>/<region>/<service>/aws4_request.  The service tells S3 from QuickSight on one port.
SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# First path segments that are not S3 buckets when a request is unsigned: Tableau's REST API,
# QuickSight's restJson1 API, moto's own API, the QuickSight emulator's bundle downloads.
NOT_BUCKETS = {"api", "accounts", "moto-api", "_download"}
# GET on a bucket with only these is ListObjects (v1).
LIST_PARAMS = {"prefix", "delimiter", "marker", "max-keys", "encoding-type"}
# Query keys that never name an operation (nor do presigned URLs' X-Amz-* parameters).
NOT_SUBRESOURCES = {"x-id", "versionId"}
# Bucket sub-resources whose operation name is not just the CamelCased query key.
BUCKET_SUFFIXES = {
    "lifecycle": "LifecycleConfiguration",
    "notification": "NotificationConfiguration",
    "accelerate": "AccelerateConfiguration",
    "analytics": "AnalyticsConfiguration",
    "inventory": "InventoryConfiguration",
    "metrics": "MetricsConfiguration",
    "intelligent-tiering": "IntelligentTieringConfiguration",
    "ownershipControls": "OwnershipControls",
}
# Bucket sub-resources whose operations are not named <Method>Bucket<Suffix>.
BUCKET_SPECIAL = {"object-lock": "ObjectLockConfiguration", "publicAccessBlock": "PublicAccessBlock"}
# Object sub-resources: GET/PUT/DELETE /bucket/key?<key> is <Method>Object<Suffix>.
OBJECT_SUFFIXES = {"tagging": "Tagging", "acl": "Acl", "attributes": "Attributes", "retention": "Retention",
                   "legal-hold": "LegalHold", "torrent": "Torrent"}
METHOD_VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}
# Path segments that are ids in "<METHOD> <path>" names: uuids (Tableau), numbers (QuickSight
# accounts, versions), long hex strings.
ID_SEGMENT_RE = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                           r"|\d+|[0-9a-fA-F]{16,})$")


def lower_headers(headers):
    """A dict of the headers with lower-case names (the last value wins for repeated names)."""
    return {name.lower(): value for name, value in headers.items()}


def query_keys(query):
    """The query's keys in order, blank values kept (`?uploads` is a key)."""
    return [key for key, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)]


def query_value(query, key):
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name == key:
            return value
    return None


def form_action(headers, body):
    """The `Action` of an AWS query-protocol request (SQS's legacy protocol), or None."""
    if not (headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return query_value(text, "Action")


def signing_service(headers, query):
    """The service a request is signed for (`s3`, `quicksight`, ...), or None when unsigned."""
    scope = SCOPE_RE.search(headers.get("authorization") or "")
    if scope:
        return scope.group(1)
    credential = query_value(query, "X-Amz-Credential")
    if credential:
        parts = credential.split("/")
        return parts[3] if len(parts) == 5 else None
    return None


def is_s3(path, query, headers):
    service = signing_service(headers, query)
    if service is not None:
        return service == "s3"
    if "x-amz-content-sha256" in headers:  # only S3 clients send it
        return True
    first = path.lstrip("/").split("/", 1)[0]
    return first != "" and first not in NOT_BUCKETS


def classify(method, path, query, headers, body=b""):
    """The operation name of a request (see README.md, "Operations")."""
    method = method.upper()
    target = headers.get("x-amz-target")
    if target:  # DynamoDB_20120810.PutItem, AmazonSQS.SendMessage
        return target.rsplit(".", 1)[-1]
    # The query protocol (SQS's legacy one): a form body never goes to S3, whose POST uploads are
    # multipart/form-data.
    action = form_action(headers, body)
    if action:
        return action
    if is_s3(path, query, headers):
        return s3_operation(method, path, query, headers)
    action = query_value(query, "Action")  # the query protocol as a GET
    if action:
        return action
    return f"{method} {generic_path(path)}"


def generic_path(path):
    return "/".join("*" if ID_SEGMENT_RE.match(segment) else segment for segment in path.split("/"))


def s3_operation(method, path, query, headers):
    """An S3 operation from a path-style request: /bucket, /bucket/key..."""
    hint = query_value(query, "x-id")
    if hint:  # the Rust SDK (and other smithy SDKs) name the operation: ?x-id=GetObject
        return hint
    keys = [key for key in query_keys(query) if key not in NOT_SUBRESOURCES and not key.startswith("X-Amz-")]
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    if key:
        return s3_object_operation(method, keys, headers)
    return s3_bucket_operation(method, keys)


def s3_object_operation(method, keys, headers):
    copy = "x-amz-copy-source" in headers
    verb = METHOD_VERBS.get(method, method.capitalize())
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT" and "partNumber" in keys:
        return "UploadPartCopy" if copy else "UploadPart"
    if method == "POST":
        for key, name in (("uploads", "CreateMultipartUpload"), ("uploadId", "CompleteMultipartUpload"),
                          ("restore", "RestoreObject"), ("select", "SelectObjectContent")):
            if key in keys:
                return name
        return "PostObject"
    if "uploadId" in keys:
        return {"GET": "ListParts", "DELETE": "AbortMultipartUpload"}.get(method, f"{verb}Object")
    for key in keys:
        if key in OBJECT_SUFFIXES:
            return f"{verb}Object{OBJECT_SUFFIXES[key]}"
    if method == "PUT" and copy:
        return "CopyObject"
    return f"{verb}Object"


def s3_bucket_operation(method, keys):
    verb = METHOD_VERBS.get(method, method.capitalize())
    if method == "HEAD":
        return "HeadBucket"
    if method == "POST":
        return "DeleteObjects" if "delete" in keys else "PostBucket"
    if method == "GET":
        if "list-type" in keys:
            return "ListObjectsV2"
        if "versions" in keys:
            return "ListObjectVersions"
        if "uploads" in keys:
            return "ListMultipartUploads"
    sub = next((key for key in keys if not (method == "GET" and key in LIST_PARAMS)), None)
    if sub is None:
        return {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(method, f"{verb}Bucket")
    if sub in BUCKET_SPECIAL:
        return f"{verb}{BUCKET_SPECIAL[sub]}"
    return f"{verb}Bucket{BUCKET_SUFFIXES.get(sub) or camel(sub)}"


def camel(name):
    """versioning -> Versioning, object-lock -> ObjectLock."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def protocol(path, query, headers, body=b""):
    """The wire protocol an error answer must speak for the client to parse it:
    "json" (awsJson: DynamoDB, SQS), "restjson" (QuickSight), "query" (SQS's form protocol),
    "tableau" (Tableau REST), or "s3" (XML, also the default)."""
    if headers.get("x-amz-target") or (headers.get("content-type") or "").startswith("application/x-amz-json"):
        return "json"
    if form_action(headers, body):
        return "query"
    service = signing_service(headers, query)
    if path.startswith("/accounts/") or (service not in (None, "s3")):
        return "restjson"
    if path.startswith("/api/") and service is None:
        return "tableau"
    return "s3"

"""What goes on the wire: injected error answers in each protocol's shape, the conditional-copy
answer, and which headers a proxy must not pass on.  See README.md, "Faults"."""

import json
import urllib.parse
import uuid
from xml.sax.saxutils import escape

# Hop-by-hop headers (RFC 9110 7.6.1) and the framing the proxy redoes itself.  Expect is
# answered here (http.server sends the 100 Continue) and the body is sent at once upstream.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "transfer-encoding", "upgrade", "expect", "content-length"}

# fault -> (HTTP status, error code, message), the same in every protocol but throttling's status.
ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
}
# Throttling as each client family recognises it: botocore and the Rust SDK retry (as throttling)
# the codes Throttling / ThrottlingException / SlowDown whatever the status, and a bare 429.
THROTTLING = {
    "s3": (503, "Throttling", "Rate exceeded"),
    "query": (400, "Throttling", "Rate exceeded"),
    "json": (400, "ThrottlingException", "Rate exceeded"),
    "restjson": (429, "ThrottlingException", "Rate exceeded"),
    "tableau": (429, "429000", "The request was rate limited; retry after the number of seconds in Retry-After."),
}
TABLEAU_SUMMARIES = {500: "Internal Server Error", 503: "Service Unavailable", 429: "Too Many Requests"}


def request_id():
    return uuid.uuid4().hex[:16].upper()


def fault_answer(fault, protocol):
    """(status, headers, body) of a slowdown / internal / throttling answer in `protocol`."""
    status, code, message = THROTTLING[protocol] if fault == "throttling" else ERRORS[fault]
    if protocol == "tableau":
        # Tableau's codes are the status and three digits; Backline reads 429 + Retry-After.
        tableau_code = code if fault == "throttling" else f"{status}000"
        headers = {"Retry-After": "1"} if status == 429 else {}
        return status, headers, tableau_error(tableau_code, TABLEAU_SUMMARIES[status], message)
    return error_answer(protocol, status, code, message)


def error_answer(protocol, status, code, message, extra_xml=""):
    """An AWS error in the framing `protocol`'s clients parse."""
    rid = request_id()
    if protocol == "json":  # awsJson 1.0 (DynamoDB, SQS): __type, and the code in a header too
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code,
                        "x-amzn-RequestId": rid}, body
    if protocol == "restjson":  # restJson1 (QuickSight): the code only in x-amzn-ErrorType
        body = json.dumps({"Message": message, "RequestId": rid}).encode()
        return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code,
                        "x-amzn-RequestId": rid}, body
    if protocol == "query":  # the query protocol wraps the error
        side = "Receiver" if status >= 500 else "Sender"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>{side}</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{rid}</RequestId></ErrorResponse>")
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
            f"{extra_xml}<RequestId>{rid}</RequestId></Error>")
    return status, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body.encode()


def tableau_error(code, summary, detail):
    return (f"<?xml version='1.0' encoding='UTF-8'?>\n"
            f'<tsResponse xmlns="http://tableau.com/api"><error code="{code}"><summary>{escape(summary)}</summary>'
            f"<detail>{escape(detail)}</detail></error></tsResponse>").encode()


def precondition_failed(condition):
    """S3's answer to a copy whose x-amz-copy-source-if-(none-)match does not hold."""
    message = "At least one of the pre-conditions you specified did not hold"
    return error_answer("s3", 412, "PreconditionFailed", message, f"<Condition>{condition}</Condition>")


def copy_source(value):
    """The upstream path (`/bucket/key`, quoted) and query (`versionId=...` or "") of an
    x-amz-copy-source header (`/bucket/key`, `bucket/key`, URL-encoded, maybe `?versionId=`);
    None for what is not a bucket and key (an access point ARN)."""
    if not value:
        return None
    source, _, query = value.strip().partition("?")
    source = urllib.parse.unquote(source).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key or source.startswith("arn:"):
        return None
    version = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k == "versionId"]
    return "/" + urllib.parse.quote(source, safe="/"), urllib.parse.urlencode(version)


def etag_in(etag, condition):
    """Whether an ETag satisfies an If-Match list (`"abc"`, `abc`, `"a", "b"`, `*`), quotes aside."""
    wanted = {part.strip().strip('"') for part in condition.split(",")}
    return "*" in wanted or etag.strip().strip('"') in wanted


def copy_precondition(etag, headers):
    """The failing condition's name for a copy from a source with `etag` (None: missing), or None."""
    if_match = headers.get("x-amz-copy-source-if-match")
    if if_match is not None and etag is not None and not etag_in(etag, if_match):
        return "x-amz-copy-source-If-Match"
    if_none_match = headers.get("x-amz-copy-source-if-none-match")
    if if_none_match is not None and etag is not None and etag_in(etag, if_none_match):
        return "x-amz-copy-source-If-None-Match"
    return None


def forwarded_headers(header_items):
    """The (name, value) pairs to pass on, minus hop-by-hop ones and those Connection names."""
    items = list(header_items)
    named = {token.strip().lower() for name, value in items if name.lower() == "connection"
             for token in value.split(",")}
    return [(name, value) for name, value in items if name.lower() not in HOP_BY_HOP | named]

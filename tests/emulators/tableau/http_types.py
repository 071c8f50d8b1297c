"""The request, response and error types the route handlers share."""

import json
import xml.etree.ElementTree as ET

import xml_out


class ApiError(Exception):
    """A Tableau error answer: HTTP status plus the <error code> body."""

    def __init__(self, status, code, summary, detail, headers=None):
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.summary, self.detail = status, code, summary, detail
        self.headers = headers or {}

    def response(self):
        r = Response(self.status, xml_out.error(self.code, self.summary, self.detail))
        r.headers.update(self.headers)
        return r


def bad_request(detail, code="400000"):
    return ApiError(400, code, "Bad Request", detail)


def not_found(code, what):
    return ApiError(404, code, "Resource Not Found", what)


class Request:
    def __init__(self, method, path, query, raw_path, headers, body):
        self.method, self.path, self.query, self.raw_path = method, path, query, raw_path
        self.headers, self.body = headers, body
        self.session = None
        self.site = None

    def param(self, name, default=None):
        return self.query.get(name, default)

    def flag(self, name, default):
        """A true/false query parameter; Tableau accepts any case (TSC sends `False`)."""
        value = self.query.get(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise bad_request(f"The {name} parameter must be true or false, not {value!r}", "400008")
        return value.lower() == "true"

    def xml(self):
        """The <tsRequest> body, namespace stripped (clients may or may not send one)."""
        try:
            root = ET.fromstring(self.body or b"")
        except ET.ParseError as e:
            raise bad_request(f"The request body is not well-formed XML: {e}")
        for element in root.iter():
            if "}" in element.tag:
                element.tag = element.tag.split("}", 1)[1]
        if root.tag != "tsRequest":
            raise bad_request(f"Expected a tsRequest element, got {root.tag}")
        return root


class Response:
    def __init__(self, status, body=b"", content_type="application/xml;charset=utf-8", stream=None, length=None):
        self.status = status
        self.body = body
        self.stream = stream  # an iterator of bytes, sent instead of body when set
        self.length = length if stream is not None else len(body)
        self.headers = {"Content-Type": content_type}


def xml_response(root, status=200):
    return Response(status, xml_out.render(root))


def json_response(value, status=200):
    return Response(status, json.dumps(value, indent=1).encode("utf-8"), "application/json")

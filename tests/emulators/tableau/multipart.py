"""multipart/mixed bodies as Tableau's publish and fileUploads calls send them.

Tableau's documentation writes part headers as `Content-Disposition: name="request_payload"`
while most clients (TSC through urllib3) write `form-data; name="..."`: both are accepted.
"""

import re

_PARAM = re.compile(r'([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MultipartError(ValueError):
    pass


def header_params(value):
    """The parameters of a header such as Content-Type or Content-Disposition, keys lowercased."""
    params = {}
    for key, raw in _PARAM.findall(value or ""):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = raw[1:-1].replace('\\"', '"')
        params[key.lower()] = raw
    return params


class Part:
    def __init__(self, headers, data):
        self.headers = headers
        self.data = data
        disposition = header_params(headers.get("content-disposition", ""))
        self.name = disposition.get("name")
        self.filename = disposition.get("filename")


def parse(content_type, body):
    """The parts of a multipart body, in order."""
    if not (content_type or "").lower().startswith("multipart/"):
        raise MultipartError(f"expected a multipart body, got Content-Type {content_type!r}")
    boundary = header_params(content_type).get("boundary")
    if not boundary:
        raise MultipartError("multipart Content-Type without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    position = body.find(delimiter)
    if position < 0:
        raise MultipartError("multipart body without its boundary")
    parts = []
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts
        header_end = body.find(b"\r\n\r\n", position)
        if header_end < 0:
            raise MultipartError("multipart part without the blank line that ends its headers")
        headers = {}
        for line in body[position:header_end].split(b"\r\n"):
            if b":" in line:
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
        start = header_end + 4
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MultipartError("multipart body ends before its closing boundary")
        parts.append(Part(headers, body[start:end]))
        position = end + 2

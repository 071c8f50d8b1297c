"""The JSON control API under /_emulator/: seed a world, arm faults, read what clients did."""

import json
import re

from http_types import Response, json_response
from world import DEFAULT_SETTINGS


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _json_body(req):
    try:
        value = json.loads(req.body or b"{}")
    except ValueError as e:
        raise ControlError(400, f"body is not JSON: {e}")
    if not isinstance(value, dict):
        raise ControlError(400, "body must be a JSON object")
    return value


def _site(state, ref):
    site = state.site_by_ref(ref)
    if site is None:
        raise ControlError(404, f"no site {ref!r} (give a site id or contentUrl)")
    return site


def reset(state, req):
    world = _json_body(req)
    try:
        state.reset(world)
    except (KeyError, ValueError, TypeError) as e:
        state.reset({})
        raise ControlError(400, f"bad world: {e!r}")
    return json_response(state.summary())


def put_workbook(state, req):
    body = _json_body(req)
    site = _site(state, body.get("site", ""))
    try:
        wb = state.put_workbook(site, body["workbook"])
    except (KeyError, ValueError, TypeError) as e:
        raise ControlError(400, f"bad workbook: {e!r}")
    return json_response({"id": wb.id, "name": wb.name, "bytes": wb.content.size})


def delete_workbook(state, req, site_ref, workbook_id):
    site = _site(state, site_ref)
    if site.workbooks.pop(workbook_id, None) is None:
        raise ControlError(404, f"no workbook {workbook_id} on site {site_ref!r}")
    return json_response({"deleted": workbook_id})


def get_workbook(state, req, site_ref, workbook_id):
    site = _site(state, site_ref)
    wb = site.workbooks.get(workbook_id)
    if wb is None:
        raise ControlError(404, f"no workbook {workbook_id} on site {site_ref!r}")
    info = state.workbook_spec(wb)
    info["content"] = wb.content.describe()
    info["no_extract"] = wb.no_extract.describe() if wb.no_extract else None
    info["revisions"] = [
        {"number": r.number, "publishedAt": r.published_at, "publisherId": r.publisher_id, "deleted": r.deleted}
        | {"current": r.current, "content": wb.revision_content(r).describe()}
        for r in wb.revisions
    ]
    return json_response(info)


def faults(state, req):
    body = _json_body(req)
    expired = state.sessions.expire_all() if body.get("expire_tokens") else 0
    state.faults.add(body)
    return json_response({"expired_sessions": expired, "faults": state.faults.summary()})


def settings(state, req):
    body = _json_body(req)
    unknown = sorted(set(body) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ControlError(400, f"unknown settings {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
    state.settings.update(body)
    return json_response(state.settings)


def get_state(state, req):
    result = {
        "sessions": state.sessions.summary(),
        "session_conflicts": state.sessions.conflicts,
        "route_counts": state.route_counts,
        "published": state.published,
        "projects_created": state.projects_created,
        "uploads": [
            {"id": k, "site": u["site"], "bytes": len(u["data"]), "chunks": u["chunks"], "used": u["used"]}
            for k, u in state.uploads.items()
        ],
        "jobs": [j.summary() for j in state.jobs.values()],
        "faults": state.faults.summary(),
        "settings": state.settings,
        "request_count": len(state.requests),
    }
    if req.param("requests", "true") != "false":
        result["requests"] = state.requests
    return json_response(result)


def published_content(state, req, site_ref, workbook_id):
    site = _site(state, site_ref)
    data = state.published_content.get((site.id, workbook_id))
    if data is None:
        raise ControlError(404, f"nothing was published as workbook {workbook_id} on site {site_ref!r}")
    return Response(200, content_type="application/octet-stream", stream=data.chunks(), length=data.size)


ROUTES = [
    ("GET", r"health", lambda state, req: json_response({"ok": True})),
    ("POST", r"reset", reset),
    ("POST", r"workbooks", put_workbook),
    ("GET", r"workbooks/(?P<site_ref>[^/]*)/(?P<workbook_id>[^/]+)", get_workbook),
    ("DELETE", r"workbooks/(?P<site_ref>[^/]*)/(?P<workbook_id>[^/]+)", delete_workbook),
    ("POST", r"faults", faults),
    ("POST", r"settings", settings),
    ("GET", r"state", get_state),
    ("GET", r"published/(?P<site_ref>[^/]*)/(?P<workbook_id>[^/]+)/content", published_content),
]
_COMPILED = [(m, re.compile(p + "$"), h) for m, p, h in ROUTES]


def handle(state, req, subpath):
    """Answers a control request; the caller holds the state lock."""
    try:
        for method, pattern, handler in _COMPILED:
            match = pattern.match(subpath)
            if match and method == req.method:
                return handler(state, req, **match.groupdict())
        raise ControlError(404, f"no control route {req.method} /_emulator/{subpath}")
    except ControlError as e:
        return json_response({"error": str(e)}, e.status)

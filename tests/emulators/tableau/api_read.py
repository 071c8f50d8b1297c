"""Read-only Tableau routes: server info, sites, projects, users, workbooks and their bytes."""

from urllib.parse import quote

import xml_out
from http_types import ApiError, Response, not_found, xml_response
from listing import apply_filter, apply_sort, paginate


def server_info(state, req):
    root = xml_out.document()
    xml_out.server_info(root, state.product_version, state.build, state.rest_api_version)
    return xml_response(root)


def list_sites(state, req):
    sites = list(state.sites.values())
    sites = apply_filter(req, sites, {"name": lambda s: s.name, "contentUrl": lambda s: s.content_url})
    page, number, size, total = paginate(req, sites, state.settings["max_page_size"])
    root = xml_out.document()
    xml_out.pagination(root, number, size, total)
    parent = xml_out.sub(root, "sites")
    for s in page:
        xml_out.site(parent, s)
    return xml_response(root)


def get_site(state, req, site_ref):
    key = (req.param("key") or "id").lower()
    if key == "id":
        site = state.sites.get(site_ref)
    elif key == "name":
        site = next((s for s in state.sites.values() if s.name == site_ref), None)
    elif key == "contenturl":
        site = state.site_by_content_url(site_ref)
    else:
        site = None
    if site is None:
        raise not_found("404000", f"Site '{site_ref}' could not be found.")
    root = xml_out.document()
    xml_out.site(root, site)
    return xml_response(root)


def list_projects(state, req, site_id):
    site = req.site
    projects = list(site.projects.values())
    fields = {
        "name": lambda p: p.name,
        "parentProjectId": lambda p: p.parent_id,
        "topLevelProject": lambda p: "true" if p.parent_id is None else "false",
        "ownerName": lambda p: site.users[p.owner_id].name if p.owner_id in site.users else None,
    }
    projects = apply_sort(req, apply_filter(req, projects, fields), {"name": lambda p: p.name})
    page, number, size, total = paginate(req, projects, state.settings["max_page_size"])
    root = xml_out.document()
    xml_out.pagination(root, number, size, total)
    parent = xml_out.sub(root, "projects")
    for p in page:
        xml_out.project(parent, p)
    return xml_response(root)


def list_users(state, req, site_id):
    users = list(req.site.users.values())
    users = apply_filter(req, users, {"name": lambda u: u.name, "siteRole": lambda u: u.site_role})
    users = apply_sort(req, users, {"name": lambda u: u.name})
    page, number, size, total = paginate(req, users, state.settings["max_page_size"])
    root = xml_out.document()
    xml_out.pagination(root, number, size, total)
    parent = xml_out.sub(root, "users")
    for u in page:
        xml_out.user(parent, u)
    return xml_response(root)


def get_user(state, req, site_id, user_id):
    user = req.site.users.get(user_id)
    if user is None:
        raise not_found("404002", f"User '{user_id}' could not be found.")
    root = xml_out.document()
    xml_out.user(root, user)
    return xml_response(root)


def _workbook_fields(site):
    def project_name(wb):
        proj = site.projects.get(wb.project_id) if wb.project_id else None
        return proj.name if proj else None

    def owner_name(wb):
        owner = site.users.get(wb.owner_id)
        return owner.name if owner else None

    return {
        "name": lambda wb: wb.name,
        "projectName": project_name,
        "ownerName": owner_name,
        "contentUrl": lambda wb: wb.content_url,
        "createdAt": lambda wb: wb.created_at,
        "updatedAt": lambda wb: wb.updated_at,
        "tags": lambda wb: list(wb.tags),
    }


def _all_fields(req):
    return "_all_" in (req.param("fields") or "").split(",")


def list_workbooks(state, req, site_id):
    site = req.site
    fields = _workbook_fields(site)
    workbooks = apply_sort(req, apply_filter(req, list(site.workbooks.values()), fields), fields)
    page, number, size, total = paginate(req, workbooks, state.settings["max_page_size"])
    root = xml_out.document()
    xml_out.pagination(root, number, size, total)
    parent = xml_out.sub(root, "workbooks")
    for wb in page:
        xml_out.workbook(parent, wb, site, _all_fields(req))
    return xml_response(root)


def find_workbook(req, workbook_id):
    wb = req.site.workbooks.get(workbook_id)
    if wb is None:
        raise not_found("404006", f"Workbook '{workbook_id}' could not be found.")
    return wb


def get_workbook(state, req, site_id, workbook_id):
    wb = find_workbook(req, workbook_id)
    root = xml_out.document()
    xml_out.workbook(root, wb, req.site, True, with_views=True)
    return xml_response(root)


def list_connections(state, req, site_id, workbook_id):
    wb = find_workbook(req, workbook_id)
    root = xml_out.document()
    parent = xml_out.sub(root, "connections")
    for c in wb.connections:
        xml_out.connection(parent, c)
    return xml_response(root)


def content_disposition(wb, twb):
    filename = f"{wb.name}.{'twb' if twb else 'twbx'}"
    if wb.disposition == "rfc5987":
        return f"name=\"tableau_workbook\"; filename*=UTF-8''{quote(filename, safe='')}"
    # The plain form puts the name in quotes as it is; non-ASCII goes out as raw UTF-8 bytes.
    escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
    return f'name="tableau_workbook"; filename="{escaped}"'


def _serve(req, wb, content_for_extract):
    include_extract = req.flag("includeExtract", True)
    if include_extract and wb.extract_forbidden:
        raise ApiError(
            403,
            "403019",
            "Forbidden",
            f"The caller does not have permission to download workbook '{wb.id}' with its extract; "
            "download it with includeExtract=false.",
        )
    content, twb = content_for_extract, wb.twb
    if not include_extract and wb.no_extract is not None:
        content, twb = wb.no_extract, wb.no_extract_twb
    response = Response(200, content_type="application/octet-stream", stream=content.chunks(), length=content.size)
    response.headers["Content-Disposition"] = content_disposition(wb, twb)
    return response


def workbook_content(state, req, site_id, workbook_id):
    wb = find_workbook(req, workbook_id)
    return _serve(req, wb, wb.content)


def list_revisions(state, req, site_id, workbook_id):
    wb = find_workbook(req, workbook_id)
    revisions = sorted(wb.revisions, key=lambda r: r.number)
    page, number, size, total = paginate(req, revisions, state.settings["max_page_size"])
    root = xml_out.document()
    xml_out.pagination(root, number, size, total)
    parent = xml_out.sub(root, "revisions")
    for rev in page:
        publisher = req.site.users.get(rev.publisher_id)
        xml_out.revision(parent, rev, publisher.name if publisher else None)
    return xml_response(root)


def revision_content(state, req, site_id, workbook_id, number):
    wb = find_workbook(req, workbook_id)
    rev = next((r for r in wb.revisions if str(r.number) == number), None)
    # Deleted revisions stay in the list but their bytes are gone.
    if rev is None or rev.deleted:
        raise not_found("404024", f"Revision {number} of workbook '{workbook_id}' could not be found.")
    return _serve(req, wb, wb.revision_content(rev))

"""Response bodies, shaped after the real responses in shared/fixtures/tableau/*.xml.

Attribute names, their order and the nesting follow those files; anything the fixtures do not
show (a publish job's workbook, a user element) follows Tableau's REST API reference.
"""

import math
import xml.etree.ElementTree as ET

NS = "http://tableau.com/api"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("", NS)
ET.register_namespace("xsi", XSI)

MIB = 1 << 20


def _tag(name):
    return f"{{{NS}}}{name}"


def sub(parent, name, attrs=None, text=None):
    element = ET.SubElement(parent, _tag(name))
    for key, value in (attrs or {}).items():
        if value is not None:
            element.set(key, str(value))
    if text is not None:
        element.text = text
    return element


def document(schema_version="3.19"):
    root = ET.Element(_tag("tsResponse"))
    xsd = f"https://help.tableau.com/samples/en-us/rest_api/ts-api_{schema_version.replace('.', '_')}.xsd"
    root.set(f"{{{XSI}}}schemaLocation", f"{NS} {xsd}")
    return root


def render(root):
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def error(code, summary, detail):
    root = document()
    element = sub(root, "error", {"code": code})
    sub(element, "summary", text=summary)
    sub(element, "detail", text=detail)
    return render(root)


def pagination(root, page_number, page_size, total):
    sub(root, "pagination", {"pageNumber": page_number, "pageSize": page_size, "totalAvailable": total})


def server_info(root, product_version, build, rest_api_version):
    info = sub(root, "serverInfo")
    sub(info, "productVersion", {"build": build}, text=product_version)
    sub(info, "restApiVersion", text=rest_api_version)


def credentials(root, token, site, user_id):
    element = sub(root, "credentials", {"token": token})
    sub(element, "site", {"id": site.id, "contentUrl": site.content_url})
    sub(element, "user", {"id": user_id})


def site(parent, s):
    attrs = {"id": s.id, "name": s.name, "contentUrl": s.content_url}
    attrs.update({"adminMode": "ContentAndUsers", "state": "Active", "revisionHistoryEnabled": "true"})
    attrs.update({"revisionLimit": "25"})
    attrs.update(s.attrs)
    sub(parent, "site", attrs)


def project(parent, p):
    element = sub(
        parent,
        "project",
        {
            "id": p.id,
            "name": p.name,
            "description": p.description,
            "contentPermissions": p.content_permissions,
            "parentProjectId": p.parent_id,
        },
    )
    if p.owner_id:
        sub(element, "owner", {"id": p.owner_id})


def user(parent, u):
    sub(
        parent,
        "user",
        {
            "id": u.id,
            "name": u.name,
            "siteRole": u.site_role,
            "fullName": u.full_name,
            "email": u.email,
            "lastLogin": u.last_login,
            "authSetting": "ServerDefault",
        },
    )


def size_mb(byte_count):
    # Tableau reports sizes in whole MB; the fixtures show "1" for small workbooks.
    return max(1, math.ceil(byte_count / MIB))


def workbook(parent, wb, site_, all_fields, with_views=False):
    attrs = {
        "id": wb.id,
        "name": wb.name,
        "description": wb.description,
        "contentUrl": wb.content_url,
        "webpageUrl": wb.webpage_url,
        "showTabs": "true" if wb.show_tabs else "false",
        "size": wb.size_mb if wb.size_mb is not None else size_mb(wb.content.size),
        "createdAt": wb.created_at,
        "updatedAt": wb.updated_at,
    }
    element = sub(parent, "workbook", attrs)
    # A workbook in a personal space has no <project> at all, not an empty one.
    if wb.project_id is not None:
        proj = site_.projects.get(wb.project_id)
        sub(element, "project", {"id": wb.project_id, "name": proj.name if proj else ""})
    owner = {"id": wb.owner_id}
    if all_fields:
        owner_user = site_.users.get(wb.owner_id)
        owner["name"] = owner_user.name if owner_user else None
    sub(element, "owner", owner)
    tags = sub(element, "tags")
    for label in wb.tags:
        sub(tags, "tag", {"label": label})
    if with_views:
        views = sub(element, "views")
        for view in wb.views:
            sub(views, "view", view)
    return element


def revision(parent, rev, publisher_name):
    attrs = {"publishedAt": rev.published_at, "revisionNumber": rev.number}
    # The fixture marks the head revision with current="true" and the others with deleted=".."
    if rev.current:
        attrs["current"] = "true"
    else:
        attrs["deleted"] = "true" if rev.deleted else "false"
    element = sub(parent, "revision", attrs)
    if rev.publisher_id:
        sub(element, "publisher", {"id": rev.publisher_id, "name": publisher_name})


def connection(parent, c):
    element = sub(
        parent,
        "connection",
        {
            "id": c.get("id"),
            "type": c.get("type", "sqlserver"),
            "serverAddress": c.get("serverAddress", ""),
            "serverPort": c.get("serverPort"),
            "userName": c.get("userName", ""),
        },
    )
    ds = c.get("datasource")
    if ds:
        sub(element, "datasource", {"id": ds.get("id"), "name": ds.get("name")})


def file_upload(root, session_id, size_in_mb):
    sub(root, "fileUpload", {"uploadSessionId": session_id, "fileSize": size_in_mb})


def job(root, j, view):
    """A job as one poll sees it; `view` says which of the fields this poll shows."""
    attrs = {
        "id": j.id,
        "mode": "Asynchronous",
        "type": j.type,
        "progress": view["progress"],
        "createdAt": j.created_at,
        "startedAt": view.get("startedAt"),
        "completedAt": view.get("completedAt"),
        "finishCode": view.get("finishCode"),
    }
    element = sub(root, "job", attrs)
    if view.get("workbook"):
        body = sub(element, "publishWorkbookJob")
        sub(body, "workbook", view["workbook"])
    if view.get("notes"):
        sub(element, "notes", text=view["notes"])
    return element

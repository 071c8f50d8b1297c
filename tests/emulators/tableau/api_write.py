"""Tableau routes that change state, except publishing: auth, projects, workbook deletion."""

import uuid

import xml_out
from http_types import ApiError, Response, bad_request, not_found, xml_response
from sessions import SIGNED_OUT
from world import Project, now

SIGNIN_ERROR = ("401001", "Signin Error", "Error signing in to Tableau Server")


def _user_on_site(site, name):
    """The id the session owner has on a site; users missing from the seed get a stable one."""
    if name is not None:
        for u in site.users.values():
            if u.name.lower() == name.lower():
                return u.id
    else:
        for u in site.users.values():
            if "Administrator" in u.site_role:
                return u.id
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{site.id}:{name}"))


def _credentials_response(state, session):
    root = xml_out.document()
    xml_out.credentials(root, session.token, state.sites[session.site_id], session.user_id)
    return xml_response(root)


def sign_in(state, req):
    credentials = req.xml().find("credentials")
    if credentials is None:
        raise bad_request("The request body has no credentials element")
    site_element = credentials.find("site")
    content_url = site_element.get("contentUrl", "") if site_element is not None else ""
    pat_name = credentials.get("personalAccessTokenName")
    name = credentials.get("name")
    if pat_name and name:
        raise bad_request("The request contains both a name/password and a personal access token")
    if pat_name:
        pat = state.pats.get(pat_name)
        if pat is None or pat["secret"] != credentials.get("personalAccessTokenSecret"):
            raise ApiError(401, *SIGNIN_ERROR)
        kind, principal, user_name = "pat", pat_name, pat["user"]
    elif name:
        if name not in state.passwords or state.passwords[name] != credentials.get("password"):
            raise ApiError(401, *SIGNIN_ERROR)
        kind, principal, user_name = "user", name, name
    else:
        raise bad_request("The credentials element has neither name/password nor a personal access token")
    # An unknown site answers like wrong credentials: Tableau does not say which one was wrong.
    site = state.site_by_content_url(content_url)
    if site is None:
        raise ApiError(401, *SIGNIN_ERROR)
    session = state.sessions.start(kind, principal, user_name, _user_on_site(site, user_name), site.id)
    return _credentials_response(state, session)


def sign_out(state, req):
    req.session.state = SIGNED_OUT
    return Response(204)


def switch_site(state, req):
    site_element = req.xml().find("site")
    if site_element is None:
        raise bad_request("The request body has no site element")
    target = state.site_by_content_url(site_element.get("contentUrl", ""))
    if target is None:
        raise ApiError(401, "401003", "Switch Site Error", "The site is unavailable or could not be found.")
    if target.id == req.session.site_id:
        raise ApiError(403, "403070", "Forbidden", "The destination site is the current site.")
    session = state.sessions.switch(req.session, target.id, _user_on_site(target, req.session.user_name))
    return _credentials_response(state, session)


def create_project(state, req, site_id):
    element = req.xml().find("project")
    if element is None or not element.get("name"):
        raise bad_request("The request body has no project element with a name")
    site = req.site
    name, parent_id = element.get("name"), element.get("parentProjectId") or None
    if parent_id is not None and parent_id not in site.projects:
        raise not_found("404005", f"Project '{parent_id}' could not be found.")
    for p in site.projects.values():
        # Names are unique among siblings, compared without case.
        if p.parent_id == parent_id and p.name.lower() == name.lower():
            raise ApiError(409, "409006", "Resource Conflict", f"A project already exists with the name '{name}'")
    project = Project(
        {
            "name": name,
            "description": element.get("description", ""),
            "parentProjectId": parent_id,
            "ownerId": req.session.user_id,
            "contentPermissions": element.get("contentPermissions", "ManagedByOwner"),
        }
    )
    site.projects[project.id] = project
    state.projects_created.append(
        {"site": site.id, "id": project.id, "name": name, "parentProjectId": parent_id, "createdAt": now()}
    )
    root = xml_out.document()
    xml_out.project(root, project)
    return xml_response(root, 201)


def delete_workbook(state, req, site_id, workbook_id):
    if workbook_id not in req.site.workbooks:
        raise not_found("404006", f"Workbook '{workbook_id}' could not be found.")
    del req.site.workbooks[workbook_id]
    return Response(204)


def update_workbook(state, req, site_id, workbook_id):
    """PUT a workbook: a new owner (`<owner id>`), name or showTabs, as Tableau's Update Workbook."""
    wb = req.site.workbooks.get(workbook_id)
    if wb is None:
        raise not_found("404006", f"Workbook '{workbook_id}' could not be found.")
    element = req.xml().find("workbook")
    if element is None:
        raise bad_request("The request body has no workbook element")
    owner = element.find("owner")
    if owner is not None:
        if owner.get("id") not in req.site.users:
            raise not_found("404002", f"User '{owner.get('id')}' could not be found.")
        wb.owner_id = owner.get("id")
    if element.get("name"):
        wb.name = element.get("name")
    if element.get("showTabs") is not None:
        wb.show_tabs = element.get("showTabs") == "true"
    wb.updated_at = now()
    root = xml_out.document()
    xml_out.workbook(root, wb, req.site, True)
    return xml_response(root)

"""Publishing: single-request and chunked (fileUploads) publishes, and asJob publish jobs."""

import hashlib
import secrets
import time
import uuid
import xml.etree.ElementTree as ET

import multipart
import xml_out
from content import Content
from http_types import ApiError, bad_request, not_found, xml_response
from world import Revision, Workbook, now, unique_content_url

MIB = 1 << 20


def _parts(req):
    try:
        return multipart.parse(req.headers.get("content-type"), req.body)
    except multipart.MultipartError as e:
        raise bad_request(f"Malformed multipart body: {e}")


def initiate_upload(state, req, site_id):
    upload_id = f"{secrets.randbelow(9000) + 1000}:{uuid.uuid4().hex}-1:0"  # the real ids carry colons
    state.uploads[upload_id] = {"site": req.site.id, "data": bytearray(), "chunks": 0, "used": False}
    root = xml_out.document()
    xml_out.file_upload(root, upload_id, 0)
    return xml_response(root, 201)


def append_upload(state, req, site_id, upload_id):
    upload = state.uploads.get(upload_id)
    if upload is None or upload["site"] != req.site.id or upload["used"]:
        raise not_found("404015", f"File upload '{upload_id}' could not be found.")
    parts = _parts(req)
    payload = next((p for p in parts if p.name == "request_payload"), None)
    if payload is not None and payload.data.strip():
        raise bad_request("The request_payload part of an append must be empty", "400019")
    files = [p for p in parts if p.name == "tableau_file"]
    if len(files) != 1:
        raise bad_request("The request has no tableau_file part with the data to append", "400020")
    if len(files[0].data) > state.settings["append_max_bytes"]:
        raise bad_request(f"One append may carry at most {state.settings['append_max_bytes']} bytes", "400016")
    upload["data"] += files[0].data
    upload["chunks"] += 1
    root = xml_out.document()
    xml_out.file_upload(root, upload_id, len(upload["data"]) // MIB)  # whole MB, rounded down
    return xml_response(root)


def _payload(parts):
    payload = next((p for p in parts if p.name == "request_payload"), None)
    if payload is None:
        raise bad_request("The request has no request_payload part")
    try:
        root = ET.fromstring(payload.data)
    except ET.ParseError as e:
        raise bad_request(f"The request_payload is not well-formed XML: {e}")
    for element in root.iter():
        element.tag = element.tag.split("}", 1)[-1]
    workbook = root.find("workbook")
    if workbook is None or not workbook.get("name"):
        raise bad_request("The request_payload has no workbook element with a name")
    return workbook


def _connections(workbook):
    """The connections and credentials the publish carried, kept so tests can assert on them."""
    found = []
    for c in workbook.iter("connection"):
        entry = {k: c.get(k) for k in ("serverAddress", "serverPort", "databaseName") if c.get(k) is not None}
        cred = c.find("connectionCredentials")
        if cred is not None:
            entry["credentials"] = dict(cred.attrib)
        found.append(entry)
    direct = workbook.find("connectionCredentials")
    if direct is not None:
        found.append({"credentials": dict(direct.attrib)})
    return found


def publish(state, req, site_id):
    site = req.site
    overwrite, as_job = req.flag("overwrite", False), req.flag("asJob", False)
    upload_id = req.param("uploadSessionId")
    parts = _parts(req)
    files = [p for p in parts if p.name == "tableau_workbook"]
    if any(p.name not in ("request_payload", "tableau_workbook") for p in parts):
        raise bad_request("The request body contains an unexpected attachment")
    workbook = _payload(parts)
    name = workbook.get("name")
    if upload_id is not None:
        if files:
            raise bad_request("The request has both an uploadSessionId and an attachment")
        upload = state.uploads.get(upload_id)
        if upload is None or upload["site"] != site.id or upload["used"]:
            raise not_found("404015", f"File upload '{upload_id}' could not be found.")
        workbook_type = (req.param("workbookType") or "").lower()
        if workbook_type not in ("twb", "twbx"):
            raise bad_request("A publish from an upload session needs workbookType=twb or twbx", "400035")
        data, filename = bytes(upload["data"]), f"{name}.{workbook_type}"
    else:
        if len(files) != 1:
            raise bad_request("There is no tableau_workbook attachment and no uploadSessionId")
        data, filename = files[0].data, files[0].filename or ""
        limit = state.settings["single_publish_max_bytes"]
        if len(data) > limit:
            raise bad_request(
                f"There was a problem publishing the file '{filename}': {len(data)} bytes exceed the "
                f"{limit} bytes one request may carry; publish it through fileUploads.",
                "400011",
            )
        workbook_type = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if workbook_type not in ("twb", "twbx"):
            raise bad_request(f"The workbook file name {filename!r} does not end in .twb or .twbx", "400020")
    project = workbook.find("project")
    project_id = project.get("id") if project is not None else None
    if project_id not in site.projects:
        raise not_found("404005", f"Project '{project_id}' could not be found.")
    existing = _existing(site, name, project_id)
    if existing is not None and not overwrite:
        raise ApiError(
            403, "403007", "Forbidden", f"A workbook named '{name}' already exists and overwrite is not true."
        )
    if upload_id is not None:
        state.uploads[upload_id]["used"] = True
    record = {
        "site": site.id,
        "siteContentUrl": site.content_url,
        "id": None,
        "name": name,
        "projectId": project_id,
        "projectName": site.projects[project_id].name,
        "ownerId": req.session.user_id,
        "ownerName": req.session.user_name,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "workbookType": workbook_type,
        "filename": filename,
        "overwrite": overwrite,
        "replaced": existing is not None,
        "asJob": as_job,
        "jobId": None,
        "chunked": upload_id is not None,
        "uploadSessionId": upload_id,
        "showTabs": workbook.get("showTabs"),
        "description": workbook.get("description"),
        "connections": _connections(workbook),
        "status": "pending",
    }
    state.published.append(record)
    pending = {"record": record, "data": data, "workbook_type": workbook_type}
    if as_job:
        job = Job(site.id, pending)
        state.jobs[job.id] = job
        record["jobId"] = job.id
        root = xml_out.document()
        first = {"progress": 0, "finishCode": state.settings["publish_job_finish_code"]}
        xml_out.job(root, job, first)
        return xml_response(root, 202)
    wb = commit(state, site, pending)
    root = xml_out.document()
    xml_out.workbook(root, wb, site, False, with_views=True)
    return xml_response(root, 201)


def _existing(site, name, project_id):
    for wb in site.workbooks.values():
        if wb.project_id == project_id and wb.name.lower() == name.lower():
            return wb
    return None


def commit(state, site, pending):
    """Makes a publish visible: a new workbook, or a new revision of the one it overwrites."""
    record, data = pending["record"], Content(data=pending["data"])
    wb = _existing(site, record["name"], record["projectId"])
    stamp = now()
    if wb is None:
        spec = {"name": record["name"], "projectId": record["projectId"], "ownerId": record["ownerId"]}
        spec.update({"createdAt": stamp, "description": record["description"] or ""})
        spec.update({"showTabs": record["showTabs"] == "true", "contentUrl": unique_content_url(site, record["name"])})
        spec["twb"] = pending["workbook_type"] == "twb"
        wb = Workbook(spec, state.fixtures_dir, record["ownerId"])
        wb.content = data
        wb.revisions = [Revision(1, stamp, record["ownerId"], data, current=True)]
        site.workbooks[wb.id] = wb
    else:
        for rev in wb.revisions:
            if rev.current:
                rev.current = False
                rev.content = wb.revision_content(rev)  # pin the bytes the revision had
        number = max((r.number for r in wb.revisions), default=0) + 1
        wb.revisions.append(Revision(number, stamp, record["ownerId"], data, current=True))
        wb.content, wb.no_extract, wb.updated_at = data, None, stamp
        wb.twb = pending["workbook_type"] == "twb"
        if record["description"] is not None:
            wb.description = record["description"]
    record["id"], record["status"] = wb.id, "done"
    state.published_content[(site.id, wb.id)] = data
    return wb


class Job:
    def __init__(self, site_id, pending):
        self.id = str(uuid.uuid4())
        self.type = "PublishWorkbook"
        self.site_id, self.pending = site_id, pending
        self.created_at = self.started_at = now()
        self.born = time.monotonic()
        self.polls = 0
        self.fails = None  # decided at the first poll that has to show the outcome
        self.final = None  # the completed view, repeated on every later poll

    def summary(self):
        return {"id": self.id, "site": self.site_id, "polls": self.polls, "done": self.final is not None}


def get_job(state, req, site_id, job_id):
    job = state.jobs.get(job_id)
    if job is None or job.site_id != req.site.id:
        raise not_found("404018", f"Job '{job_id}' could not be found.")
    root = xml_out.document()
    xml_out.job(root, job, _poll(state, req.site, job))
    return xml_response(root)


def settle(state):
    """Completes the publish jobs older than `job_seconds`, polled or not; the caller holds the lock."""
    limit = state.settings.get("job_seconds")
    if limit is None:
        return
    for job in list(state.jobs.values()):
        if job.final is None and time.monotonic() - job.born >= float(limit):
            job.polls = max(job.polls, int(state.settings["job_polls"]))
            _poll(state, state.sites[job.site_id], job)


def _poll(state, site, job):
    if job.final is not None:
        return job.final
    job.polls += 1
    unfinished = int(state.settings["job_polls"])
    if job.polls <= unfinished:
        view = {"progress": min(99, 100 * job.polls // (unfinished + 1)), "startedAt": job.started_at}
        # Real servers can show finishCode one poll before completedAt: done is completedAt.
        if job.polls == unfinished and state.settings["early_finish_code"]:
            view["finishCode"] = "1" if _fails(state, job) else "0"
        return view
    record = job.pending["record"]
    view = {"progress": 100, "startedAt": job.started_at, "completedAt": now()}
    if _fails(state, job):
        record["status"] = "failed"
        view.update({"finishCode": "1", "notes": f"Publishing workbook '{record['name']}' failed (emulator fault)."})
    else:
        wb = commit(state, site, job.pending)
        view.update({"finishCode": "0", "workbook": {"id": wb.id, "name": wb.name}})
    job.pending["data"] = None
    job.final = view
    return view


def _fails(state, job):
    if job.fails is None:
        job.fails = state.faults.take_job_failure()
    return job.fails

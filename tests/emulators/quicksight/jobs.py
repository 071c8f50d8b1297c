"""What export and import jobs share: ids, concurrency slots, the status
machine, presigned download URLs, and the state dump.

A job does its work when it leaves IN_PROGRESS, which happens on a Describe
poll (see `advance`): the job advances one status after it has been seen
`polls_per_status` times, so tests control exactly how many polls a client
makes, and a job nobody polls keeps its concurrency slot, unless `job_seconds` is set
(see `settle`).
"""

import hashlib
import hmac
import math
import re
import time

from .world import ApiError

JOB_ID_RE = re.compile(r"^[\w\-]{1,512}$")
RUNNING = {"QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "FAILED_ROLLBACK_IN_PROGRESS"}


def jobs_of(world, kind):
    return world.export_jobs if kind == "export" else world.import_jobs


def start_checks(world, ctx, kind, job_id):
    world.account(ctx.account)
    if not JOB_ID_RE.match(job_id or ""):
        raise ApiError("InvalidParameterValueException", f"Job id {job_id!r} must match [\\w\\-]+")
    jobs = jobs_of(world, kind)
    old = jobs.get((ctx.account, ctx.region, job_id))
    # The model documents ids as unique while a job runs and reusable after.
    if old and old["status"] in RUNNING:
        raise ApiError("ConflictException", f"An {kind} job with id {job_id} is already running")
    limit = int(world.settings[f"max_concurrent_{kind}s"])
    running = running_count(world, kind, ctx.account)
    if running >= limit:
        raise ApiError("LimitExceededException", f"At most {limit} {kind} jobs can run at the same time in an account")


def running_count(world, kind, account):
    return sum(1 for (a, _, _), j in jobs_of(world, kind).items() if a == account and j["status"] in RUNNING)


def register(world, ctx, kind, job):
    jobs_of(world, kind)[(ctx.account, ctx.region, job["id"])] = job
    world.max_running[kind] = max(world.max_running[kind], running_count(world, kind, ctx.account))


def find(world, ctx, kind, param):
    world.account(ctx.account)
    job = jobs_of(world, kind).get((ctx.account, ctx.region, ctx.params[param]))
    if job is None:
        raise ApiError("ResourceNotFoundException", f"{kind.capitalize()} job {ctx.params[param]} not found")
    return job


def advance(world, job, run):
    if job["polls"] >= int(world.settings["polls_per_status"]) and job["status"] in RUNNING:
        if job["status"] == "QUEUED_FOR_IMMEDIATE_EXECUTION":
            job["status"] = "IN_PROGRESS"
        elif job["status"] == "IN_PROGRESS":
            job["status"] = run(world, job)
        else:
            job["status"] = "FAILED_ROLLBACK_COMPLETED"
        job["polls"] = 0
    job["polls"] += 1


def settle(world, runners):
    """Finishes the jobs older than `settings.job_seconds`, polled or not, as QuickSight runs
    a job whether or not anyone looks; `runners` maps "export"/"import" to the function
    that does a job's work. The caller holds the lock."""
    limit = world.settings.get("job_seconds")
    if limit is None:
        return
    now = time.time()
    for kind, run in runners.items():
        for job in jobs_of(world, kind).values():
            if job["status"] in RUNNING and now - job["created"] >= float(limit):
                if job["status"] != "FAILED_ROLLBACK_IN_PROGRESS":
                    job["status"] = run(world, job)
                if job["status"] == "FAILED_ROLLBACK_IN_PROGRESS":
                    job["status"] = "FAILED_ROLLBACK_COMPLETED"


def _sign(world, path, expires):
    return hmac.new(world.secret.encode(), f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()


def presigned(world, ctx, kind, job):
    """A fresh, short-lived URL to the emulator's own download endpoint."""
    path = f"/_download/{kind}/{job['account']}/{job['region']}/{job['id']}"
    # Rounded up: the URL stays valid for at least url_ttl_seconds.
    expires = math.ceil(time.time() + float(world.settings["url_ttl_seconds"]))
    if world.take_expired_url():
        expires = math.floor(time.time()) - 1
    return f"http://{ctx.host}{path}?expires={expires}&signature={_sign(world, path, expires)}"


def job_error(arn_, type_, message):
    return {"Arn": arn_, "Type": type_, "Message": message}


def download(world, path, query):
    """(status, content type, body, filename) for a GET of a presigned URL."""
    parts = path.strip("/").split("/")
    if len(parts) != 5 or parts[1] not in ("export", "import"):
        return 404, *_s3_error("NoSuchKey", "The specified key does not exist."), None
    _, kind, account, region, job_id = parts
    try:
        expires = int(query.get("expires", ""))
    except ValueError:
        return 403, *_s3_error("AccessDenied", "Query-string authentication requires the expires parameter"), None
    if not hmac.compare_digest(_sign(world, path, expires), query.get("signature", "")):
        return 403, *_s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."), None
    if time.time() > expires:
        return 403, *_s3_error("AccessDenied", "Request has expired"), None
    with world.lock:
        job = jobs_of(world, kind).get((account, region, job_id))
        data = job and job["bundle"]
    if not data:
        return 404, *_s3_error("NoSuchKey", "The specified key does not exist."), None
    is_cfn = kind == "export" and job["request"].get("ExportFormat") == "CLOUDFORMATION_JSON"
    return 200, "application/json" if is_cfn else "application/zip", data, f"assetbundle-{job_id}.qs"


def _s3_error(code, message):
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>EMULATOR</RequestId></Error>'
    return "application/xml", body.encode()


def dump_jobs(world):
    exports = []
    for job in world.export_jobs.values():
        req = job["request"]
        exports.append(
            {
                "account": job["account"],
                "region": job["region"],
                "id": job["id"],
                "status": job["status"],
                "resource_arns": req["ResourceArns"],
                "include_all_dependencies": bool(req.get("IncludeAllDependencies")),
                "export_format": req["ExportFormat"],
                "entries": job["entries"],
                "errors": job["errors"],
                "warnings": job["warnings"],
                "created": job["created"],
            }
        )
    imports = []
    for job in world.import_jobs.values():
        imports.append(
            {
                "account": job["account"],
                "region": job["region"],
                "id": job["id"],
                "status": job["status"],
                "source": "S3Uri" if "S3Uri" in job["source"] else "Body",
                "s3_uri": job["source"].get("S3Uri"),
                "failure_action": job["failure_action"],
                "errors": job["errors"],
                "imported": job["imported"],
                "created": job["created"],
            }
        )
    return exports, imports

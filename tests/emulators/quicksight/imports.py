"""Asset bundle import jobs: StartAssetBundleImportJob, DescribeAssetBundleImportJob."""

import base64
import io
import json
import re
import urllib.error
import urllib.request
import zipfile

from .jobs import advance, find, job_error, presigned, register, start_checks
from .world import KINDS, ApiError, arn, now, parse_arn

ENTRY_RE = re.compile(r"^(datasource|dataset|analysis|dashboard)/([^/]+)\.json$")
# Key in OverrideParameters and the id member inside each of its entries.
OVERRIDE_KEYS = {
    "datasource": ("DataSources", "DataSourceId"),
    "dataset": ("DataSets", "DataSetId"),
    "analysis": ("Analyses", "AnalysisId"),
    "dashboard": ("Dashboards", "DashboardId"),
}


def fetch_s3(world, ctx):
    """Fetch an S3Uri bundle before the world lock is taken (network I/O)."""
    source = (ctx.body or {}).get("AssetBundleImportSource") or {}
    uri = source.get("S3Uri")
    if not uri:
        return None
    m = re.match(r"^s3://([^/]+)/(.+)$", uri)
    endpoint = world.settings.get("s3_endpoint")
    if not m:
        return ("error", f"S3Uri {uri} is not of the form s3://bucket/key")
    if not endpoint:
        return ("error", "The emulator has no s3_endpoint setting to read S3Uri from")
    base = endpoint if "://" in endpoint else f"http://{endpoint}"
    try:
        with urllib.request.urlopen(f"{base.rstrip('/')}/{m.group(1)}/{m.group(2)}", timeout=10) as resp:
            return ("ok", resp.read())
    except (urllib.error.URLError, OSError) as exc:
        return ("error", f"Could not read {uri}: {exc}")


def start_import(world, ctx):
    body = ctx.body
    job_id = body.get("AssetBundleImportJobId")
    start_checks(world, ctx, "import", job_id)
    source = body.get("AssetBundleImportSource") or {}
    if ("Body" in source) == ("S3Uri" in source):
        raise ApiError("InvalidParameterValueException", "AssetBundleImportSource needs exactly one of Body and S3Uri")
    failure_action = body.get("FailureAction", "ROLLBACK")
    if failure_action not in ("DO_NOTHING", "ROLLBACK"):
        raise ApiError("InvalidParameterValueException", "FailureAction must be DO_NOTHING or ROLLBACK")
    if "Body" in source:
        try:
            data, fetch_error = base64.b64decode(source["Body"], validate=True), None
        except (ValueError, TypeError):
            raise ApiError("InvalidParameterValueException", "AssetBundleImportSource.Body is not base64")
    else:
        outcome = ctx.prepared or ("error", "S3Uri was not fetched")
        data, fetch_error = (outcome[1], None) if outcome[0] == "ok" else (None, outcome[1])
    job = {
        "id": job_id,
        "account": ctx.account,
        "region": ctx.region,
        "arn": arn(ctx.region, ctx.account, "asset-bundle-import-job", job_id),
        "created": now(),
        "status": "QUEUED_FOR_IMMEDIATE_EXECUTION",
        "polls": 0,
        "request": body,
        "source": {"S3Uri": source["S3Uri"]} if "S3Uri" in source else {"Body": True},
        "failure_action": failure_action,
        "bundle": data,
        "fetch_error": fetch_error,
        "errors": [],
        "rollback_errors": [],
        "warnings": [],
        "imported": [],
        "inject_failure": world.take_fault("fail_next_import"),
    }
    register(world, ctx, "import", job)
    return {"Arn": job["arn"], "AssetBundleImportJobId": job_id}


start_import.prepare = fetch_s3


def describe_import(world, ctx):
    job = find(world, ctx, "import", "AssetBundleImportJobId")
    advance(world, job, _run_import)
    req = job["request"]
    source = dict(job["source"])
    if "Body" in source:
        source["Body"] = presigned(world, ctx, "import", job)
    out = {
        "JobStatus": job["status"],
        "Errors": job["errors"],
        "RollbackErrors": job["rollback_errors"],
        "Arn": job["arn"],
        "CreatedTime": job["created"],
        "AssetBundleImportJobId": job["id"],
        "AwsAccountId": job["account"],
        "AssetBundleImportSource": source,
        "FailureAction": job["failure_action"],
        "Warnings": job["warnings"],
    }
    for key in ("OverrideParameters", "OverridePermissions", "OverrideTags", "OverrideValidationStrategy"):
        if key in req:
            out[key] = req[key]
    return out


def _read_bundle(data):
    """Bundle entries keyed by (kind, id), or raise ValueError."""
    entries = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            m = ENTRY_RE.match(name)
            if m:
                entry = json.loads(zf.read(name))
                entries[(m.group(1), entry.get("Id", m.group(2)))] = entry
    if not entries:
        raise ValueError("the bundle holds no asset entries")
    return entries


def _run_import(world, job):
    failed = "FAILED_ROLLBACK_IN_PROGRESS" if job["failure_action"] == "ROLLBACK" else "FAILED"
    if job["fetch_error"]:
        job["errors"] = [job_error(job["arn"], "InvalidRequestException", job["fetch_error"])]
        return failed
    try:
        entries = _read_bundle(job["bundle"])
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        job["errors"] = [job_error(job["arn"], "InvalidRequestException", f"The asset bundle is not valid: {exc}")]
        return failed
    if job["inject_failure"]:
        job["errors"] = [job_error(job["arn"], "InternalFailureException", "Injected import failure")]
        return failed

    overrides = job["request"].get("OverrideParameters") or {}
    prefix = (overrides.get("ResourceIdOverrideConfiguration") or {}).get("PrefixForAllResources") or ""
    store = world.region_store(job["account"], job["region"])
    planned, errors = {}, []  # (kind, new id) -> asset to create

    def target(kind, old_id):
        return arn(job["region"], job["account"], kind, prefix + old_id)

    for kind in KINDS:
        key, id_member = OVERRIDE_KEYS[kind]
        by_id = {o.get(id_member): o for o in overrides.get(key) or []}
        for (ekind, old_id), entry in entries.items():
            if ekind != kind:
                continue
            new_id = prefix + old_id
            deps, missing = [], []
            for dep_arn in entry.get("Dependencies") or []:
                parsed = parse_arn(dep_arn or "")
                if not parsed:
                    continue
                dkind, did = parsed[2], parsed[3]
                if (dkind, did) in entries:
                    dep = (dkind, prefix + did)
                    ok = dep in planned
                elif prefix + did in store[dkind]:
                    dep, ok = (dkind, prefix + did), True
                else:
                    dep, ok = (dkind, did), did in store[dkind]
                deps.append(dep)
                if not ok:
                    missing.append(arn(job["region"], job["account"], *dep))
            if missing:
                errors.append(job_error(target(kind, old_id), "ResourceNotFoundException", f"Missing dependencies: {', '.join(missing)}"))
                continue
            override = by_id.get(old_id) or {}
            created = now()
            asset = {
                "kind": kind,
                "id": new_id,
                "name": override.get("Name") or entry.get("Name") or new_id,
                "arn": target(kind, old_id),
                "created": store[kind][new_id]["created"] if new_id in store[kind] else created,
                "updated": created,
                "deps": deps,
                "exportable": True,
                "definition": entry.get("Definition"),
                "permissions": entry.get("Permissions") or [],
                "tags": entry.get("Tags") or [],
            }
            if kind == "datasource":
                asset["type"] = entry.get("Type", "ATHENA")
                asset["parameters"] = override.get("DataSourceParameters") or entry.get("DataSourceParameters")
            if kind == "dataset":
                asset["import_mode"] = entry.get("ImportMode", "SPICE")
            planned[(kind, new_id)] = asset

    # ROLLBACK leaves the account as it was; DO_NOTHING keeps what worked.
    if errors and job["failure_action"] == "ROLLBACK":
        job["errors"] = errors
        return failed
    for (kind, new_id), asset in planned.items():
        store[kind][new_id] = asset
        job["imported"].append(asset["arn"])
    if errors:
        job["errors"] = errors
        return failed
    return "SUCCESSFUL"


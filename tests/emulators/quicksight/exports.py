"""Asset bundle export jobs: StartAssetBundleExportJob, DescribeAssetBundleExportJob.

The bundle is a zip with one JSON entry per asset, `<kind>/<id>.json`
(CLOUDFORMATION_JSON gives a CloudFormation template instead).
"""

import io
import json
import re
import zipfile

from .jobs import advance, find, job_error, presigned, register, start_checks
from .world import KINDS, ApiError, arn, now, parse_arn

CFN_TYPES = {
    "datasource": ("AWS::QuickSight::DataSource", "DataSourceId"),
    "dataset": ("AWS::QuickSight::DataSet", "DataSetId"),
    "analysis": ("AWS::QuickSight::Analysis", "AnalysisId"),
    "dashboard": ("AWS::QuickSight::Dashboard", "DashboardId"),
}


def start_export(world, ctx):
    body = ctx.body
    job_id = body.get("AssetBundleExportJobId")
    start_checks(world, ctx, "export", job_id)
    arns = body.get("ResourceArns")
    if not isinstance(arns, list) or not 1 <= len(arns) <= 100:
        raise ApiError("InvalidParameterValueException", "ResourceArns must hold 1 to 100 ARNs")
    for value in arns:
        parsed = parse_arn(value)
        if not parsed or parsed[2] not in KINDS:
            raise ApiError("InvalidParameterValueException", f"{value} is not an ARN of a data source, data set, analysis or dashboard")
        if parsed[0] != ctx.region or parsed[1] != ctx.account:
            raise ApiError("InvalidParameterValueException", f"{value} is not in account {ctx.account} region {ctx.region}")
    if body.get("ExportFormat") not in ("QUICKSIGHT_JSON", "CLOUDFORMATION_JSON"):
        raise ApiError("InvalidParameterValueException", "ExportFormat must be QUICKSIGHT_JSON or CLOUDFORMATION_JSON")
    job = {
        "id": job_id,
        "account": ctx.account,
        "region": ctx.region,
        "arn": arn(ctx.region, ctx.account, "asset-bundle-export-job", job_id),
        "created": now(),
        "status": "QUEUED_FOR_IMMEDIATE_EXECUTION",
        "polls": 0,
        "request": body,
        "errors": [],
        "warnings": [],
        "entries": [],
        "bundle": None,
        "inject_failure": _fails(world, body),
    }
    register(world, ctx, "export", job)
    return {"Arn": job["arn"], "AssetBundleExportJobId": job_id}


def _fails(world, body):
    """Whether this export job takes one of the `fail_next_export` faults."""
    wanted = world.faults["fail_export_arn_contains"]
    if wanted is not None and not any(wanted in arn for arn in body.get("ResourceArns") or []):
        return False
    return world.take_fault("fail_next_export")


def describe_export(world, ctx):
    job = find(world, ctx, "export", "AssetBundleExportJobId")
    advance(world, job, _run_export)
    req = job["request"]
    out = {
        "JobStatus": job["status"],
        "Arn": job["arn"],
        "CreatedTime": job["created"],
        "AssetBundleExportJobId": job["id"],
        "AwsAccountId": job["account"],
        "ResourceArns": req["ResourceArns"],
        "IncludeAllDependencies": bool(req.get("IncludeAllDependencies")),
        "ExportFormat": req["ExportFormat"],
        "IncludePermissions": bool(req.get("IncludePermissions")),
        "IncludeTags": bool(req.get("IncludeTags")),
        "IncludeFolderMemberships": bool(req.get("IncludeFolderMemberships")),
        "Errors": job["errors"],
        "Warnings": job["warnings"],
    }
    for key in ("CloudFormationOverridePropertyConfiguration", "ValidationStrategy", "IncludeFolderMembers"):
        if key in req:
            out[key] = req[key]
    if job["status"] == "SUCCESSFUL":
        out["DownloadUrl"] = presigned(world, ctx, "export", job)
    return out


def _run_export(world, job):
    req = job["request"]
    store = world.region_store(job["account"], job["region"])
    unexportable_types = set(world.settings.get("unexportable_datasource_types") or [])
    selected, errors, warnings = [], [], []

    def visit(kind, asset_id, parent):
        if (kind, asset_id) in selected:
            return
        asset = store[kind].get(asset_id)
        if asset is None:
            errors.append(job_error(arn(job["region"], job["account"], kind, asset_id), "ResourceNotFoundException", f"{kind} {asset_id} does not exist"))
            return
        if not asset["exportable"] or asset.get("type") in unexportable_types:
            why = f" (required by {parent})" if parent else ""
            errors.append(job_error(asset["arn"], "UnsupportedResourceException", f"{kind} {asset_id} cannot be exported in an asset bundle{why}"))
        selected.append((kind, asset_id))
        for dkind, did in asset["deps"]:
            if req.get("IncludeAllDependencies"):
                visit(dkind, did, asset["arn"])
            elif (dkind, did) not in wanted:
                warnings.append({"Arn": asset["arn"], "Message": f"Dependency {arn(job['region'], job['account'], dkind, did)} is not included in the bundle"})

    wanted = [tuple(parse_arn(value)[2:]) for value in req["ResourceArns"]]
    for kind, asset_id in wanted:
        visit(kind, asset_id, None)

    limit = world.settings.get("fail_export_if_more_than")
    if limit is not None and len(selected) > int(limit):
        errors.append(job_error(job["arn"], "LimitExceededException", f"The bundle would hold {len(selected)} assets, more than {limit}"))
    if job["inject_failure"]:
        errors.append(job_error(job["arn"], "InternalFailureException", "Injected export failure"))
    job["warnings"] = warnings
    if errors:
        job["errors"] = errors
        return "FAILED"
    ordered = sorted(selected, key=lambda k: list(KINDS).index(k[0]))
    assets = [store[k][i] for k, i in ordered]
    if req["ExportFormat"] == "CLOUDFORMATION_JSON":
        job["bundle"] = _cloudformation(store, assets)
        job["entries"] = ["template.json"]
    else:
        job["bundle"], job["entries"] = _zip(store, assets, req)
    return "SUCCESSFUL"


def _entry(store, asset, req):
    """One asset as a bundle entry: enough to recreate it, deps as ARNs."""
    out = {
        "Kind": asset["kind"],
        "Id": asset["id"],
        "Arn": asset["arn"],
        "Name": asset["name"],
        "CreatedTime": asset["created"],
        "LastUpdatedTime": asset["updated"],
        "Dependencies": [store[k][i]["arn"] if i in store[k] else None for k, i in asset["deps"]],
        "Definition": asset.get("definition"),
    }
    if asset["kind"] == "datasource":
        out["Type"] = asset["type"]
        if asset.get("parameters"):
            out["DataSourceParameters"] = asset["parameters"]
    if asset["kind"] == "dataset":
        out["ImportMode"] = asset["import_mode"]
    if req.get("IncludePermissions"):
        out["Permissions"] = asset["permissions"]
    if req.get("IncludeTags"):
        out["Tags"] = asset["tags"]
    return out


def _zip(store, assets, req):
    buf = io.BytesIO()
    names = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for asset in assets:
            name = f"{asset['kind']}/{asset['id']}.json"
            zf.writestr(name, json.dumps(_entry(store, asset, req), indent=2, sort_keys=True))
            names.append(name)
    return buf.getvalue(), names


def _cloudformation(store, assets):
    resources = {}
    logical = {a["arn"]: re.sub(r"[^A-Za-z0-9]", "", f"{a['kind']}{a['id']}") for a in assets}
    for a in assets:
        cfn_type, id_key = CFN_TYPES[a["kind"]]
        depends = [logical[store[k][i]["arn"]] for k, i in a["deps"] if i in store[k] and store[k][i]["arn"] in logical]
        resources[logical[a["arn"]]] = {
            "Type": cfn_type,
            "DependsOn": depends,
            "Properties": {"AwsAccountId": {"Ref": "AWS::AccountId"}, id_key: a["id"], "Name": a["name"]},
        }
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
    return json.dumps(template, indent=2).encode()


"""Asset bundle export and import jobs through boto3, downloads through urllib."""

import datetime
import io
import json
import threading
import time
import urllib.error
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

from .conftest import ACCOUNT, OTHER, REGION, poll


def arn(kind, asset_id, account=ACCOUNT):
    return f"arn:aws:quicksight:{REGION}:{account}:{kind}/{asset_id}"


def world(**settings):
    return {
        "settings": settings,
        "accounts": {
            ACCOUNT: {
                "identity_region": REGION,
                "regions": {
                    REGION: {
                        "datasources": [
                            {"id": "athena", "name": "Athena", "type": "ATHENA"},
                            {"id": "files", "name": "Files", "type": "S3"},
                            {"id": "crm", "name": "CRM", "type": "SALESFORCE"},
                        ],
                        "datasets": [
                            {"id": "sales", "name": "Sales", "deps": ["athena"], "definition": {"sql": "select 1"}},
                            {"id": "upload", "name": "Uploaded CSV", "deps": ["files"], "exportable": False},
                            {"id": "crm-set", "name": "CRM", "deps": ["crm"]},
                        ],
                        "analyses": [{"id": "sales-analysis", "name": "Sales analysis", "deps": ["sales"]}],
                        "dashboards": [
                            {"id": "sales-dash", "name": "Sales", "deps": ["sales-analysis"], "tags": [{"Key": "team", "Value": "bi"}]},
                            {"id": "upload-dash", "name": "Upload", "deps": ["upload"]},
                        ],
                    }
                },
            },
            OTHER: {"identity_region": REGION},
        },
    }


def export(qs, job_id, arns, deps=True, fmt="QUICKSIGHT_JSON", **extra):
    qs.start_asset_bundle_export_job(
        AwsAccountId=ACCOUNT, AssetBundleExportJobId=job_id, ResourceArns=arns, IncludeAllDependencies=deps, ExportFormat=fmt, **extra
    )
    return poll(lambda: qs.describe_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId=job_id))


def download(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read()


def zip_entries(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: json.loads(zf.read(name)) for name in zf.namelist()}


def test_export_polls_to_successful_and_the_url_expires(emu):
    emu.reset(world(url_ttl_seconds=1))
    qs = emu.client()
    seen, job = export(qs, "job-1", [arn("dashboard", "sales-dash")], IncludeTags=True)
    assert seen == ["QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "SUCCESSFUL"]
    assert isinstance(job["CreatedTime"], datetime.datetime) and job["Errors"] == []
    assert job["ResourceArns"] == [arn("dashboard", "sales-dash")] and job["IncludeTags"] is True
    entries = zip_entries(download(job["DownloadUrl"]))
    assert sorted(entries) == ["analysis/sales-analysis.json", "dashboard/sales-dash.json", "dataset/sales.json", "datasource/athena.json"]
    assert entries["dataset/sales.json"]["Dependencies"] == [arn("datasource", "athena")]
    assert entries["dataset/sales.json"]["Definition"] == {"sql": "select 1"}
    assert entries["dashboard/sales-dash.json"]["Tags"] == [{"Key": "team", "Value": "bi"}]

    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as exc:
        download(job["DownloadUrl"])
    assert exc.value.code == 403 and b"Request has expired" in exc.value.read()
    fresh = qs.describe_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="job-1")["DownloadUrl"]
    assert zip_entries(download(fresh)).keys() == entries.keys()
    with pytest.raises(urllib.error.HTTPError) as exc:
        download(fresh.replace("signature=", "signature=0"))
    assert exc.value.code == 403


def test_the_expire_next_urls_fault_hands_out_an_expired_url_once(emu):
    emu.reset(world())
    qs = emu.client()
    _, job = export(qs, "job-x", [arn("dashboard", "sales-dash")])
    emu.faults({"expire_next_urls": 1})
    expired = qs.describe_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="job-x")["DownloadUrl"]
    with pytest.raises(urllib.error.HTTPError) as exc:
        download(expired)
    assert exc.value.code == 403 and b"Request has expired" in exc.value.read()
    fresh = qs.describe_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="job-x")["DownloadUrl"]
    assert "dashboard/sales-dash.json" in zip_entries(download(fresh))
    assert emu.state()["faults"]["expire_next_urls"] == 0


def test_export_without_dependencies_warns_and_cloudformation_format(emu):
    emu.reset(world())
    qs = emu.client()
    _, job = export(qs, "only-set", [arn("dataset", "sales")], deps=False)
    assert job["JobStatus"] == "SUCCESSFUL"
    assert list(zip_entries(download(job["DownloadUrl"]))) == ["dataset/sales.json"]
    assert job["Warnings"][0]["Arn"] == arn("dataset", "sales") and "datasource/athena" in job["Warnings"][0]["Message"]
    _, job = export(qs, "cfn", [arn("analysis", "sales-analysis")], fmt="CLOUDFORMATION_JSON")
    template = json.loads(download(job["DownloadUrl"]))
    assert template["Resources"]["analysissalesanalysis"]["DependsOn"] == ["datasetsales"]


def test_sixth_concurrent_export_is_limited_and_running_ids_conflict(emu):
    emu.reset(world())
    qs = emu.client()
    for i in range(5):
        qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId=f"j{i}", ResourceArns=[arn("dataset", "sales")], ExportFormat="QUICKSIGHT_JSON")
    with pytest.raises(ClientError) as exc:
        qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="j5", ResourceArns=[arn("dataset", "sales")], ExportFormat="QUICKSIGHT_JSON")
    assert exc.value.response["Error"]["Code"] == "LimitExceededException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    state = emu.state()
    assert state["running_exports"] == 5 and state["max_concurrent_exports_seen"] == 5
    assert [j["resource_arns"] for j in state["export_jobs"]][0] == [arn("dataset", "sales")]

    poll(lambda: qs.describe_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="j0"))
    with pytest.raises(ClientError) as exc:
        qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="j1", ResourceArns=[arn("dataset", "sales")], ExportFormat="QUICKSIGHT_JSON")
    assert exc.value.response["Error"]["Code"] == "ConflictException"
    # A finished job's id may be reused, and its slot is free again.
    qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="j0", ResourceArns=[arn("dataset", "sales")], ExportFormat="QUICKSIGHT_JSON")
    assert emu.state()["running_exports"] == 5


def test_with_job_seconds_a_job_nobody_polls_finishes_and_frees_its_slot(emu):
    # Generous: on a loaded CI machine two requests in a row once took over 2 s.
    emu.reset(world(max_concurrent_exports=1, job_seconds=5))
    qs = emu.client()
    start = dict(ResourceArns=[arn("dataset", "sales")], ExportFormat="QUICKSIGHT_JSON")
    qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="left", **start)
    with pytest.raises(ClientError) as exc:
        qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="next", **start)
    assert exc.value.response["Error"]["Code"] == "LimitExceededException"
    time.sleep(5.1)
    # Nobody polled "left": it finished anyway, and the next Start finds its slot free.
    qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="next", **start)
    left = qs.describe_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="left")
    assert left["JobStatus"] == "SUCCESSFUL" and left["DownloadUrl"]


def test_unexportable_assets_fail_the_job_naming_their_arns(emu):
    emu.reset(world(unexportable_datasource_types=["SALESFORCE"]))
    qs = emu.client()
    _, job = export(qs, "mixed", [arn("dashboard", "sales-dash"), arn("dashboard", "upload-dash")])
    assert job["JobStatus"] == "FAILED" and "DownloadUrl" not in job
    assert [e["Arn"] for e in job["Errors"]] == [arn("dataset", "upload")]
    _, job = export(qs, "crm", [arn("dataset", "crm-set")])
    assert [e["Arn"] for e in job["Errors"]] == [arn("datasource", "crm")]
    _, job = export(qs, "missing", [arn("dashboard", "nope")])
    assert job["Errors"][0]["Type"] == "ResourceNotFoundException"
    # Splitting the failed asset off lets the rest export.
    assert export(qs, "rest", [arn("dashboard", "sales-dash")])[1]["JobStatus"] == "SUCCESSFUL"
    with pytest.raises(ClientError) as exc:
        qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId="bad", ResourceArns=["not-an-arn"], ExportFormat="QUICKSIGHT_JSON")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_size_limit_and_injected_export_failure(emu):
    emu.reset(world(fail_export_if_more_than=2, polls_per_status=0))
    qs = emu.client()
    seen, job = export(qs, "big", [arn("dashboard", "sales-dash")])
    assert seen == ["IN_PROGRESS", "FAILED"] and job["Errors"][0]["Type"] == "LimitExceededException"
    assert export(qs, "small", [arn("dataset", "sales")])[1]["JobStatus"] == "SUCCESSFUL"
    emu.faults({"fail_next_export": True})
    assert export(qs, "unlucky", [arn("dataset", "sales")])[1]["JobStatus"] == "FAILED"
    assert export(qs, "lucky", [arn("dataset", "sales")])[1]["JobStatus"] == "SUCCESSFUL"
    # Aimed at dashboards: a data set export passes and the failure stays for a dashboard's.
    emu.faults({"fail_next_export": 1, "fail_export_arn_contains": ":dashboard/"})
    assert export(qs, "spared", [arn("dataset", "sales")])[1]["JobStatus"] == "SUCCESSFUL"
    assert emu.state()["faults"]["fail_next_export"] == 1


def start_import(qs, job_id, account=OTHER, **kwargs):
    qs.start_asset_bundle_import_job(AwsAccountId=account, AssetBundleImportJobId=job_id, **kwargs)
    return poll(lambda: qs.describe_asset_bundle_import_job(AwsAccountId=account, AssetBundleImportJobId=job_id))


def test_import_body_restores_assets_into_another_account(emu):
    emu.reset(world())
    qs = emu.client()
    _, job = export(qs, "all", [arn("dashboard", "sales-dash")])
    bundle = download(job["DownloadUrl"])
    seen, imp = start_import(qs, "restore", AssetBundleImportSource={"Body": bundle})
    assert seen == ["QUEUED_FOR_IMMEDIATE_EXECUTION", "IN_PROGRESS", "SUCCESSFUL"]
    assert imp["AssetBundleImportSource"]["Body"].startswith("http") and imp["Errors"] == []
    assert download(imp["AssetBundleImportSource"]["Body"]) == bundle
    assert [d["DashboardId"] for d in qs.list_dashboards(AwsAccountId=OTHER)["DashboardSummaryList"]] == ["sales-dash"]
    assert [d["DataSourceId"] for d in qs.list_data_sources(AwsAccountId=OTHER)["DataSources"]] == ["athena"]
    described = qs.describe_dashboard(AwsAccountId=OTHER, DashboardId="sales-dash")["Dashboard"]
    assert described["Version"]["DataSetArns"] == [arn("dataset", "sales", OTHER)]

    overrides = {"ResourceIdOverrideConfiguration": {"PrefixForAllResources": "copy-"}, "Dashboards": [{"DashboardId": "sales-dash", "Name": "Sales copy"}]}
    _, imp = start_import(qs, "copy", AssetBundleImportSource={"Body": bundle}, OverrideParameters=overrides, FailureAction="DO_NOTHING")
    assert imp["JobStatus"] == "SUCCESSFUL" and imp["OverrideParameters"] == overrides
    names = {d["DashboardId"]: d["Name"] for d in qs.list_dashboards(AwsAccountId=OTHER)["DashboardSummaryList"]}
    assert names == {"sales-dash": "Sales", "copy-sales-dash": "Sales copy"}
    state = emu.state()
    assert state["import_jobs"][0]["imported"][-1] == arn("dashboard", "sales-dash", OTHER)
    assert [a["deps"] for a in state["accounts"][OTHER]["regions"][REGION]["datasets"]] == [["datasource/athena"], ["datasource/copy-athena"]]


def test_import_with_a_missing_dependency_fails(emu):
    emu.reset(world())
    qs = emu.client()
    _, job = export(qs, "partial", [arn("dataset", "sales"), arn("analysis", "sales-analysis"), arn("datasource", "files")], deps=False)
    bundle = download(job["DownloadUrl"])
    seen, imp = start_import(qs, "rollback", AssetBundleImportSource={"Body": bundle}, FailureAction="ROLLBACK")
    assert seen[-2:] == ["FAILED_ROLLBACK_IN_PROGRESS", "FAILED_ROLLBACK_COMPLETED"]
    assert [e["Arn"] for e in imp["Errors"]] == [arn("dataset", "sales", OTHER), arn("analysis", "sales-analysis", OTHER)]
    assert qs.list_data_sources(AwsAccountId=OTHER)["DataSources"] == []
    # DO_NOTHING keeps what could be imported.
    _, imp = start_import(qs, "partial", AssetBundleImportSource={"Body": bundle}, FailureAction="DO_NOTHING")
    assert imp["JobStatus"] == "FAILED"
    assert [d["DataSourceId"] for d in qs.list_data_sources(AwsAccountId=OTHER)["DataSources"]] == ["files"]
    _, imp = start_import(qs, "junk", AssetBundleImportSource={"Body": b"not a zip"})
    assert imp["JobStatus"] == "FAILED_ROLLBACK_COMPLETED" and "not valid" in imp["Errors"][0]["Message"]


class FakeS3(BaseHTTPRequestHandler):
    objects = {}

    def do_GET(self):
        data = self.objects.get(self.path)
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args):
        pass


def test_import_from_s3uri_reads_the_configured_endpoint(emu):
    emu.reset(world())
    qs = emu.client()
    _, job = export(qs, "for-s3", [arn("analysis", "sales-analysis")])
    FakeS3.objects = {"/backups/qs/bundle.qs": download(job["DownloadUrl"])}
    s3 = ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    threading.Thread(target=s3.serve_forever, daemon=True).start()
    try:
        emu.control("settings", {"s3_endpoint": f"127.0.0.1:{s3.server_address[1]}"})
        _, imp = start_import(qs, "from-s3", AssetBundleImportSource={"S3Uri": "s3://backups/qs/bundle.qs"})
        assert imp["JobStatus"] == "SUCCESSFUL" and imp["AssetBundleImportSource"] == {"S3Uri": "s3://backups/qs/bundle.qs"}
        assert [a["AnalysisId"] for a in qs.list_analyses(AwsAccountId=OTHER)["AnalysisSummaryList"]] == ["sales-analysis"]
        _, imp = start_import(qs, "gone", AssetBundleImportSource={"S3Uri": "s3://backups/qs/missing.qs"})
        assert imp["JobStatus"] == "FAILED_ROLLBACK_COMPLETED" and "missing.qs" in imp["Errors"][0]["Message"]
    finally:
        s3.shutdown()
        s3.server_close()


def test_concurrent_starts_never_exceed_the_limit(emu):
    emu.reset(world())
    outcomes = []
    # boto3's default session is not thread-safe for creating clients: make them here.
    clients = [emu.client(retries={"total_max_attempts": 1}) for _ in range(12)]

    def start(i):
        qs = clients[i]
        try:
            qs.start_asset_bundle_export_job(AwsAccountId=ACCOUNT, AssetBundleExportJobId=f"race-{i}", ResourceArns=[arn("dataset", "sales")], ExportFormat="QUICKSIGHT_JSON")
            outcomes.append("started")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=start, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["LimitExceededException"] * 7 + ["started"] * 5
    assert emu.state()["max_concurrent_exports_seen"] == 5

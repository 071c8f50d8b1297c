"""The emulator against boto3: routes, users/groups, asset listings, faults.
Asset bundle jobs are in test_bundles.py; fixtures in conftest.py."""

import datetime
import http.client
import json
import urllib.error
import urllib.request

import botocore.session
import pytest
from botocore.exceptions import ClientError

from . import routes
from .conftest import ACCOUNT, REGION, check_value


def error_of(exc_info):
    err = exc_info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_routes_match_the_botocore_model():
    model = botocore.session.get_session().get_service_model("quicksight")
    for method, uri, name, _ in routes.ROUTES:
        http = model.operation_model(name).http
        assert (http["method"], http["requestUri"]) == (method, uri), name
        assert http.get("responseCode", 200) == 200, name


def world_with_identities(n_users=25):
    users = [{"name": f"user{i:02d}", "role": "AUTHOR" if i % 2 else "READER"} for i in range(n_users)]
    users.append({"name": "ops-role/alice", "identity_type": "IAM", "iam_arn": "arn:aws:iam::111111111111:role/ops-role"})
    return {
        "settings": {"page_size": 10},
        "accounts": {
            ACCOUNT: {
                "identity_region": REGION,
                "namespaces": ["default", "team"],
                "users": users,
                "groups": [{"name": f"group{i}", "description": f"Group {i}"} for i in range(12)],
                "memberships": [{"group": "group0", "member": f"user{i:02d}"} for i in range(min(15, n_users))],
            }
        },
    }


def test_users_groups_and_memberships_page_through_boto3_paginators(emu):
    emu.reset(world_with_identities())
    qs = emu.client()
    pages = list(qs.get_paginator("list_users").paginate(AwsAccountId=ACCOUNT, Namespace="default"))
    assert [len(p["UserList"]) for p in pages] == [10, 10, 6]
    names = [u["UserName"] for p in pages for u in p["UserList"]]
    assert names[:2] == ["user00", "user01"] and names[-1] == "ops-role/alice"
    first = pages[0]["UserList"][1]
    assert first["Arn"] == f"arn:aws:quicksight:{REGION}:{ACCOUNT}:user/default/user01"
    assert first["Role"] == "AUTHOR" and first["IdentityType"] == "QUICKSIGHT" and first["Active"] is True
    assert pages[0]["Status"] == 200 and pages[0]["RequestId"]

    groups = qs.get_paginator("list_groups").paginate(AwsAccountId=ACCOUNT, Namespace="default").build_full_result()
    assert len(groups["GroupList"]) == 12 and groups["GroupList"][3]["Description"] == "Group 3"
    members = list(
        qs.get_paginator("list_group_memberships").paginate(AwsAccountId=ACCOUNT, Namespace="default", GroupName="group0", PaginationConfig={"PageSize": 4})
    )
    assert [len(p["GroupMemberList"]) for p in members] == [4, 4, 4, 3]
    assert emu.state()["calls"]["ListUsers"] == 3
    assert qs.list_users(AwsAccountId=ACCOUNT, Namespace="team")["UserList"] == []


def test_user_calls_from_another_region_are_denied_with_the_identity_region(emu):
    emu.reset(world_with_identities())
    with pytest.raises(ClientError) as exc:
        emu.client("eu-west-1").list_users(AwsAccountId=ACCOUNT, Namespace="default")
    code, status, message = error_of(exc)
    assert (code, status) == ("AccessDeniedException", 401)
    assert "identity region is us-east-1" in message and "eu-west-1" in message
    # Assets are regional: another region is simply empty.
    assert emu.client("eu-west-1").list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"] == []


def test_register_describe_group_membership_and_delete(emu):
    emu.reset(world_with_identities(2))
    qs = emu.client()
    iam = qs.register_user(
        AwsAccountId=ACCOUNT,
        Namespace="default",
        IdentityType="IAM",
        IamArn=f"arn:aws:iam::{ACCOUNT}:role/reporting",
        SessionName="bob",
        Email="bob@example.com",
        UserRole="READER",
    )
    assert iam["User"]["UserName"] == "reporting/bob" and "UserInvitationUrl" not in iam
    invited = qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="QUICKSIGHT", UserName="carol", Email="c@example.com", UserRole="AUTHOR")
    assert invited["UserInvitationUrl"].startswith("http") and invited["User"]["Active"] is False
    with pytest.raises(ClientError) as exc:
        qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="QUICKSIGHT", UserName="carol", Email="c@example.com", UserRole="AUTHOR")
    assert error_of(exc)[:2] == ("ResourceExistsException", 409)
    with pytest.raises(ClientError) as exc:
        qs.register_user(AwsAccountId=ACCOUNT, Namespace="default", IdentityType="IAM", Email="x@example.com", UserRole="READER")
    assert error_of(exc)[:2] == ("InvalidParameterValueException", 400)

    # A slash in a user name travels as %2F in one path segment.
    assert qs.describe_user(AwsAccountId=ACCOUNT, Namespace="default", UserName="reporting/bob")["User"]["Email"] == "bob@example.com"
    group = qs.create_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName="analysts", Description="Analysts")["Group"]
    assert group["Arn"].endswith(":group/default/analysts")
    member = qs.create_group_membership(AwsAccountId=ACCOUNT, Namespace="default", GroupName="analysts", MemberName="reporting/bob")
    assert member["GroupMember"]["MemberName"] == "reporting/bob"
    assert qs.describe_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName="analysts")["Group"]["Description"] == "Analysts"
    with pytest.raises(ClientError) as exc:
        qs.describe_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName="nobody")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)

    qs.delete_user(AwsAccountId=ACCOUNT, Namespace="default", UserName="reporting/bob")
    assert qs.list_group_memberships(AwsAccountId=ACCOUNT, Namespace="default", GroupName="analysts")["GroupMemberList"] == []
    qs.delete_group(AwsAccountId=ACCOUNT, Namespace="default", GroupName="analysts")
    state = emu.state()["accounts"][ACCOUNT]["namespaces"]["default"]
    assert "analysts" not in [g["name"] for g in state["groups"]]
    assert "carol" in [u["name"] for u in state["users"]]


def asset_world():
    return {
        "accounts": {
            ACCOUNT: {
                "identity_region": REGION,
                "regions": {
                    REGION: {
                        "datasources": [{"id": "athena", "name": "Athena", "type": "ATHENA", "parameters": {"AthenaParameters": {"WorkGroup": "primary"}}}],
                        "datasets": [
                            {"id": "sales", "name": "Sales", "deps": ["athena"], "import_mode": "DIRECT_QUERY"},
                            {"generate": 30, "prefix": "ds", "deps": ["athena"]},
                        ],
                        "analyses": [{"id": "sales-analysis", "name": "Sales analysis", "deps": ["sales"]}],
                        "dashboards": [{"generate": 250, "deps": ["sales-analysis"]}],
                    }
                },
            }
        }
    }


def test_asset_listings_page_and_parse_timestamps_as_datetimes(emu):
    emu.reset(asset_world())
    qs = emu.client()
    pages = list(qs.get_paginator("list_dashboards").paginate(AwsAccountId=ACCOUNT))
    assert [len(p["DashboardSummaryList"]) for p in pages] == [100, 100, 50]
    dash = pages[2]["DashboardSummaryList"][-1]
    assert dash["DashboardId"] == "dashboard-0250" and dash["Name"] == "Dashboard 250"
    for key in ("CreatedTime", "LastUpdatedTime", "LastPublishedTime"):
        assert isinstance(dash[key], datetime.datetime)

    sets = qs.get_paginator("list_data_sets").paginate(AwsAccountId=ACCOUNT, PaginationConfig={"PageSize": 7}).build_full_result()
    assert len(sets["DataSetSummaries"]) == 31
    assert sets["DataSetSummaries"][0]["ImportMode"] == "DIRECT_QUERY"
    assert isinstance(sets["DataSetSummaries"][0]["CreatedTime"], datetime.datetime)
    sources = qs.list_data_sources(AwsAccountId=ACCOUNT)["DataSources"]
    assert sources[0]["Type"] == "ATHENA" and isinstance(sources[0]["LastUpdatedTime"], datetime.datetime)
    analyses = qs.list_analyses(AwsAccountId=ACCOUNT)["AnalysisSummaryList"]
    assert analyses[0]["AnalysisId"] == "sales-analysis" and isinstance(analyses[0]["CreatedTime"], datetime.datetime)

    assert qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId="athena")["DataSource"]["DataSourceParameters"] == {"AthenaParameters": {"WorkGroup": "primary"}}
    table = qs.describe_data_set(AwsAccountId=ACCOUNT, DataSetId="sales")["DataSet"]["PhysicalTableMap"]["table-0"]
    assert table["RelationalTable"]["DataSourceArn"].endswith(":datasource/athena")
    assert qs.describe_analysis(AwsAccountId=ACCOUNT, AnalysisId="sales-analysis")["Analysis"]["DataSetArns"][0].endswith(":dataset/sales")
    version = qs.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId="dashboard-0001")["Dashboard"]["Version"]
    assert version["SourceEntityArn"].endswith(":analysis/sales-analysis") and version["DataSetArns"][0].endswith(":dataset/sales")
    assert isinstance(version["CreatedTime"], datetime.datetime)
    with pytest.raises(ClientError) as exc:
        qs.describe_dashboard(AwsAccountId=ACCOUNT, DashboardId="missing")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)


def test_bad_next_token_and_max_results(emu):
    emu.reset(asset_world())
    qs = emu.client()
    with pytest.raises(ClientError) as exc:
        qs.list_dashboards(AwsAccountId=ACCOUNT, NextToken="garbage")
    assert error_of(exc)[:2] == ("InvalidNextTokenException", 400)
    token = qs.list_dashboards(AwsAccountId=ACCOUNT, MaxResults=5)["NextToken"]
    with pytest.raises(ClientError) as exc:
        qs.list_data_sets(AwsAccountId=ACCOUNT, NextToken=token)
    assert error_of(exc)[0] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as exc:
        emu.client(parameter_validation=False).list_dashboards(AwsAccountId=ACCOUNT, MaxResults=500)
    assert error_of(exc)[:2] == ("InvalidParameterValueException", 400)


def test_unknown_account_is_not_found(emu):
    with pytest.raises(ClientError) as exc:
        emu.client().list_dashboards(AwsAccountId="999999999999")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)


def test_throttling_faults_reach_boto3_as_throttling(emu):
    emu.reset(asset_world())
    emu.faults({"throttle": {"count": 2, "operation": "ListDashboards"}})
    qs = emu.client(retries={"total_max_attempts": 1})
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            qs.list_dashboards(AwsAccountId=ACCOUNT)
        assert error_of(exc)[:2] == ("ThrottlingException", 429)
    qs.list_data_sets(AwsAccountId=ACCOUNT)  # other operations are not throttled
    assert len(qs.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"]) == 100
    # boto3's own retry recognises the code as throttling and retries through it.
    emu.faults({"throttle": {"count": 1, "operation": "ListAnalyses"}})
    assert emu.client().list_analyses(AwsAccountId=ACCOUNT)["AnalysisSummaryList"]
    state = emu.state()
    assert state["errors"]["ListDashboards"] == {"ThrottlingException": 2}
    assert state["calls"]["ListAnalyses"] == 2


def test_generic_error_fault_and_control_api_errors(emu):
    emu.reset(asset_world())
    emu.faults({"errors": [{"operation": "DescribeDataSet", "code": "InternalFailureException"}]})
    with pytest.raises(ClientError) as exc:
        emu.client(retries={"total_max_attempts": 1}).describe_data_set(AwsAccountId=ACCOUNT, DataSetId="sales")
    assert error_of(exc)[:2] == ("InternalFailureException", 500)
    with pytest.raises(urllib.error.HTTPError) as http:
        emu.reset({"accounts": {ACCOUNT: {"regions": {REGION: {"datasets": [{"id": "x", "deps": ["nope"]}]}}}}})
    assert http.value.code == 400 and "nope" in json.loads(http.value.read())["error"]


def test_shape_checker_catches_what_a_strict_client_would_reject():
    model = botocore.session.get_session().get_service_model("quicksight")
    errors = []
    body = {"DashboardSummaryList": [{"CreatedTime": "2024-01-01T00:00:00Z", "Bogus": 1}], "Status": "200"}
    check_value(body, model.operation_model("ListDashboards").output_shape, "ListDashboards", errors)
    assert len(errors) == 3 and "not an epoch number" in errors[0]


def test_chunked_request_bodies_and_unknown_paths(emu):
    emu.reset(world_with_identities(1))

    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    body = json.dumps({"GroupName": "chunky"}).encode()
    conn.putrequest("POST", f"/accounts/{ACCOUNT}/namespaces/default/groups")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["Group"]["GroupName"] == "chunky"
    conn.request("GET", f"/accounts/{ACCOUNT}/no-such-thing")  # same keep-alive connection
    resp = conn.getresponse()
    assert resp.status == 404 and resp.getheader("x-amzn-ErrorType") == "UnknownOperationException"
    resp.read()
    conn.close()

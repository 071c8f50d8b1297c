"""The served operations: (HTTP method, requestUri, operation name, handler).

Method and requestUri are copied from botocore's QuickSight model
(service-2.json, 2018-04-01); test_emulator.py checks them against it, so a
drift in the model shows up as a failing test rather than a silent 404.
"""

from urllib.parse import unquote

from . import assets, exports, imports, users

NS = "/accounts/{AwsAccountId}/namespaces/{Namespace}"

ROUTES = [
    ("GET", NS + "/users", "ListUsers", users.list_users),
    ("POST", NS + "/users", "RegisterUser", users.register_user),
    ("GET", NS + "/users/{UserName}", "DescribeUser", users.describe_user),
    ("DELETE", NS + "/users/{UserName}", "DeleteUser", users.delete_user),
    ("GET", NS + "/groups", "ListGroups", users.list_groups),
    ("POST", NS + "/groups", "CreateGroup", users.create_group),
    ("GET", NS + "/groups/{GroupName}", "DescribeGroup", users.describe_group),
    ("DELETE", NS + "/groups/{GroupName}", "DeleteGroup", users.delete_group),
    ("GET", NS + "/groups/{GroupName}/members", "ListGroupMemberships", users.list_group_memberships),
    ("PUT", NS + "/groups/{GroupName}/members/{MemberName}", "CreateGroupMembership", users.create_group_membership),
    ("GET", "/accounts/{AwsAccountId}/data-sources", "ListDataSources", assets.list_data_sources),
    ("GET", "/accounts/{AwsAccountId}/data-sources/{DataSourceId}", "DescribeDataSource", assets.describe_data_source),
    ("GET", "/accounts/{AwsAccountId}/data-sets", "ListDataSets", assets.list_data_sets),
    ("GET", "/accounts/{AwsAccountId}/data-sets/{DataSetId}", "DescribeDataSet", assets.describe_data_set),
    ("GET", "/accounts/{AwsAccountId}/analyses", "ListAnalyses", assets.list_analyses),
    ("GET", "/accounts/{AwsAccountId}/analyses/{AnalysisId}", "DescribeAnalysis", assets.describe_analysis),
    ("GET", "/accounts/{AwsAccountId}/dashboards", "ListDashboards", assets.list_dashboards),
    ("GET", "/accounts/{AwsAccountId}/dashboards/{DashboardId}", "DescribeDashboard", assets.describe_dashboard),
    ("POST", "/accounts/{AwsAccountId}/asset-bundle-export-jobs/export", "StartAssetBundleExportJob", exports.start_export),
    (
        "GET",
        "/accounts/{AwsAccountId}/asset-bundle-export-jobs/{AssetBundleExportJobId}",
        "DescribeAssetBundleExportJob",
        exports.describe_export,
    ),
    ("POST", "/accounts/{AwsAccountId}/asset-bundle-import-jobs/import", "StartAssetBundleImportJob", imports.start_import),
    (
        "GET",
        "/accounts/{AwsAccountId}/asset-bundle-import-jobs/{AssetBundleImportJobId}",
        "DescribeAssetBundleImportJob",
        imports.describe_import,
    ),
]


def _split(template):
    return [s for s in template.split("/") if s]


_COMPILED = [(method, _split(uri), name, handler) for method, uri, name, handler in ROUTES]


def match(method, raw_path):
    """(operation name, handler, path params) or None.

    Segments are split before percent-decoding: a label such as an IAM user
    name 'role/session' arrives as one %2F-encoded segment.  Literal segments
    win over labels, so '.../asset-bundle-export-jobs/export' is the Start
    operation for POST while GET of the same path is a Describe of job 'export'.
    """
    segments = [unquote(s) for s in raw_path.split("/") if s]
    best = None
    for m, parts, name, handler in _COMPILED:
        if m != method or len(parts) != len(segments):
            continue
        params, literals = {}, 0
        for pattern, value in zip(parts, segments):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = value
            elif pattern == value:
                literals += 1
            else:
                break
        else:
            if best is None or literals > best[0]:
                best = (literals, name, handler, params)
    return best[1:] if best else None


def path_exists(raw_path):
    """Whether some other method serves this path (for 405 vs 404)."""
    return any(match(m, raw_path) for m in {r[0] for r in ROUTES})

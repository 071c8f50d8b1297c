"""Data sources, data sets, analyses and dashboards: List* and Describe*.

Assets live per account and per region (the region the call is signed for);
a region the world never seeded simply has no assets.
"""

from .world import KINDS, ApiError

SUCCESS = "CREATION_SUCCESSFUL"


def _store(world, ctx):
    world.account(ctx.account)
    return world.region_store(ctx.account, ctx.region)


def _get(store, kind, asset_id, label):
    asset = store[kind].get(asset_id)
    if asset is None:
        raise ApiError("ResourceNotFoundException", f"{label} {asset_id} not found", "DATA_SET" if kind == "dataset" else None)
    return asset


def dep_arns(store, asset, kind):
    return [store[k][i]["arn"] for k, i in asset["deps"] if k == kind and i in store[k]]


def dashboard_dataset_arns(store, asset):
    """Datasets a dashboard reads: its own plus those of the analyses it came from."""
    out = dep_arns(store, asset, "dataset")
    for k, i in asset["deps"]:
        if k == "analysis" and i in store["analysis"]:
            out += [a for a in dep_arns(store, store["analysis"][i], "dataset") if a not in out]
    return out


def datasource_json(a):
    out = {
        "Arn": a["arn"],
        "DataSourceId": a["id"],
        "Name": a["name"],
        "Type": a["type"],
        "Status": SUCCESS,
        "CreatedTime": a["created"],
        "LastUpdatedTime": a["updated"],
    }
    if a.get("parameters"):
        out["DataSourceParameters"] = a["parameters"]
    return out


def dataset_summary(a):
    return {
        "Arn": a["arn"],
        "DataSetId": a["id"],
        "Name": a["name"],
        "CreatedTime": a["created"],
        "LastUpdatedTime": a["updated"],
        "ImportMode": a["import_mode"],
        "RowLevelPermissionTagConfigurationApplied": False,
        "ColumnLevelPermissionRulesApplied": False,
    }


def dataset_json(store, a):
    out = dataset_summary(a)
    del out["RowLevelPermissionTagConfigurationApplied"], out["ColumnLevelPermissionRulesApplied"]
    # One relational table per data source, the way a client discovers a
    # dataset's data sources from DescribeDataSet.
    out["PhysicalTableMap"] = {
        f"table-{n}": {"RelationalTable": {"DataSourceArn": ds, "Name": "table", "InputColumns": [{"Name": "id", "Type": "STRING"}]}}
        for n, ds in enumerate(dep_arns(store, a, "datasource"))
    }
    out["OutputColumns"] = [{"Name": "id", "Type": "STRING"}]
    return out


def analysis_summary(a):
    return {
        "Arn": a["arn"],
        "AnalysisId": a["id"],
        "Name": a["name"],
        "Status": SUCCESS,
        "CreatedTime": a["created"],
        "LastUpdatedTime": a["updated"],
    }


def analysis_json(store, a):
    out = analysis_summary(a)
    out["DataSetArns"] = dep_arns(store, a, "dataset")
    out["Errors"] = []
    return out


def dashboard_summary(a):
    return {
        "Arn": a["arn"],
        "DashboardId": a["id"],
        "Name": a["name"],
        "CreatedTime": a["created"],
        "LastUpdatedTime": a["updated"],
        "PublishedVersionNumber": 1,
        "LastPublishedTime": a["updated"],
    }


def dashboard_json(store, a):
    version = {
        "CreatedTime": a["created"],
        "Errors": [],
        "VersionNumber": 1,
        "Status": SUCCESS,
        "Arn": f"{a['arn']}/version/1",
        "DataSetArns": dashboard_dataset_arns(store, a),
    }
    sources = dep_arns(store, a, "analysis")
    if sources:
        version["SourceEntityArn"] = sources[0]
    return {
        "DashboardId": a["id"],
        "Arn": a["arn"],
        "Name": a["name"],
        "Version": version,
        "CreatedTime": a["created"],
        "LastPublishedTime": a["updated"],
        "LastUpdatedTime": a["updated"],
    }


def _lister(kind, member, render):
    def handler(world, ctx):
        store = _store(world, ctx)
        page, token = world.paginate(store[kind].values(), ctx.query, ctx.listing_key())
        return {member: [render(a) for a in page], "NextToken": token}

    return handler


list_data_sources = _lister("datasource", "DataSources", datasource_json)
list_data_sets = _lister("dataset", "DataSetSummaries", dataset_summary)
list_analyses = _lister("analysis", "AnalysisSummaryList", analysis_summary)
list_dashboards = _lister("dashboard", "DashboardSummaryList", dashboard_summary)


def describe_data_source(world, ctx):
    store = _store(world, ctx)
    return {"DataSource": datasource_json(_get(store, "datasource", ctx.params["DataSourceId"], "DataSource"))}


def describe_data_set(world, ctx):
    store = _store(world, ctx)
    return {"DataSet": dataset_json(store, _get(store, "dataset", ctx.params["DataSetId"], "DataSet"))}


def describe_analysis(world, ctx):
    store = _store(world, ctx)
    return {"Analysis": analysis_json(store, _get(store, "analysis", ctx.params["AnalysisId"], "Analysis"))}


def describe_dashboard(world, ctx):
    store = _store(world, ctx)
    version = ctx.query.get("version-number")
    if version not in (None, "1"):
        raise ApiError("ResourceNotFoundException", f"Dashboard version {version} not found")
    return {"Dashboard": dashboard_json(store, _get(store, "dashboard", ctx.params["DashboardId"], "Dashboard"))}


def dump_assets(acc):
    """Assets of one account per region for /_emulator/state (deps as kind/id)."""
    out = {}
    for region, store in acc["regions"].items():
        out[region] = {}
        for kind, items in store.items():
            out[region][KINDS[kind]["plural"]] = [dict(a, deps=[f"{k}/{i}" for k, i in a["deps"]]) for a in items.values()]
    return out

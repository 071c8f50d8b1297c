"""The emulator driven by a real client, tableauserverclient, plus raw checks of its XML."""

import hashlib
import os

import pytest
import tableauserverclient as TSC
from tableauserverclient.server.endpoint.exceptions import (
    FailedSignInError,
    JobFailedException,
    ServerResponseError,
)

from conftest import (
    ADMIN,
    DEFAULT_SITE,
    FILLERS,
    FIXTURES,
    MARKETING_SITE,
    P_DEFAULT,
    P_FINANCE,
    P_REPORTS,
    WB_LOCKED,
    WB_SUPERSTORE,
    WB_VENTES,
)

SEEDED_WORKBOOKS = 6 + FILLERS


def server(emu):
    s = TSC.Server(emu.url)
    s.version = "3.19"
    return s


def pat_server(emu, site=""):
    s = server(emu)
    s.auth.sign_in(TSC.PersonalAccessTokenAuth("backline", "pat-secret", site_id=site))
    return s


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_sign_in_with_pat_and_with_password(emu):
    s = pat_server(emu)
    assert s.site_id == DEFAULT_SITE and s.user_id == ADMIN
    s2 = server(emu)
    s2.auth.sign_in(TSC.TableauAuth("cassie", "cassie-pw", site_id="marketing"))
    assert s2.site_id == MARKETING_SITE
    s2.auth.sign_out()
    with pytest.raises(FailedSignInError) as wrong:
        server(emu).auth.sign_in(TSC.TableauAuth("cassie", "nope"))
    assert wrong.value.code == "401001"
    with pytest.raises(FailedSignInError) as no_site:
        server(emu).auth.sign_in(TSC.TableauAuth("cassie", "cassie-pw", site_id="nowhere"))
    assert no_site.value.code == "401001"


def test_pat_sign_in_again_ends_the_earlier_session(emu):
    first = pat_server(emu)
    assert len(first.workbooks.get()[0]) > 0
    second = pat_server(emu, site="marketing")  # another site: still the same PAT
    with pytest.raises(FailedSignInError) as ended:
        first.workbooks.get()
    assert ended.value.code == "401002"
    assert second.projects.get()[1].total_available == 1
    state = emu.state()
    assert state["session_conflicts"] == 1
    assert state["sessions"]["by_pat"]["backline"]["active"] == 1
    assert state["sessions"]["by_pat"]["backline"]["ended"] == {"replaced": 1}
    # Password sessions may overlap.
    a, b = server(emu), server(emu)
    a.auth.sign_in(TSC.TableauAuth("admin", "admin-pw"))
    b.auth.sign_in(TSC.TableauAuth("admin", "admin-pw"))
    a.workbooks.get()
    b.workbooks.get()
    assert emu.state()["session_conflicts"] == 1


def test_switch_site_gives_a_new_token(emu):
    s = pat_server(emu)
    old = s.auth_token
    s.auth.switch_site(TSC.SiteItem("Marketing", "marketing"))
    assert s.site_id == MARKETING_SITE and s.auth_token != old
    assert [p.name for p in TSC.Pager(s.projects)] == ["default"]
    s._set_auth(DEFAULT_SITE, ADMIN, old, "")
    with pytest.raises(FailedSignInError) as e:
        s.workbooks.get()
    assert e.value.code == "401002"
    assert emu.state()["session_conflicts"] == 0


def test_sites_and_nested_projects(emu):
    s = pat_server(emu)
    sites = list(TSC.Pager(s.sites))
    assert [(x.name, x.content_url) for x in sites] == [("Default", ""), ("Marketing", "marketing")]
    projects = {p.name: p for p in TSC.Pager(s.projects, TSC.RequestOptions(pagesize=2))}
    assert projects["Reports"].parent_id == P_FINANCE and projects["Finance"].parent_id is None
    made = s.projects.create(TSC.ProjectItem("Archive", parent_id=P_REPORTS))
    assert made.parent_id == P_REPORTS
    with pytest.raises(ServerResponseError) as dup:
        s.projects.create(TSC.ProjectItem("archive", parent_id=P_REPORTS))
    assert dup.value.code == "409006"
    s.projects.create(TSC.ProjectItem("Archive"))  # same name under another parent is fine
    assert [p["name"] for p in emu.state()["projects_created"]] == ["Archive", "Archive"]


def test_workbooks_across_pages_and_filters(emu):
    s = pat_server(emu)
    workbooks = list(TSC.Pager(s.workbooks, TSC.RequestOptions(pagesize=5)))
    assert len(workbooks) == SEEDED_WORKBOOKS
    pages = [r for r in emu.state()["requests"] if r["route"] == "workbooks.list"]
    assert len(pages) == -(-SEEDED_WORKBOOKS // 5)
    by_name = {w.name: w for w in workbooks}
    assert by_name["Private"].project_name is None  # personal space: no <project> (TSC invents an id)
    assert by_name["Superstore"].tags == {"Safari", "Sample"}
    assert by_name["Superstore"].project_name == "default"
    assert by_name["Bad Date"].updated_at is None  # 2016-06-31 is served verbatim; TSC gives up on it
    assert [w.name for w in s.workbooks.filter(name="Superstore")] == ["Superstore"]
    assert len(list(s.workbooks.filter(project_name="Reports"))) == FILLERS
    with pytest.raises(ServerResponseError) as past_end:
        s.workbooks.get(TSC.RequestOptions(pagenumber=99))
    assert past_end.value.code == "400006"


def test_users_by_name(emu):
    s = pat_server(emu)
    users = list(s.users.filter(name="cassie"))
    assert len(users) == 1 and users[0].site_role == "Creator"


def test_download_with_both_content_dispositions(emu, tmp_path):
    s = pat_server(emu)
    path = s.workbooks.download(WB_SUPERSTORE, filepath=str(tmp_path))
    assert os.path.basename(path) == "Superstore.twbx"
    assert sha(path) == sha(os.path.join(FIXTURES, "SampleWB.twbx"))
    path = s.workbooks.download(WB_VENTES, filepath=str(tmp_path), include_extract=False)
    # filename*=UTF-8''Ventes%2C%20Q1%20%C3%A9t%C3%A9.twbx; TSC drops the comma itself
    assert os.path.basename(path) == "Ventes Q1 été.twbx"
    with open(path, "rb") as f:
        assert f.read() == b"PK\x03\x04ventes"


def test_extract_forbidden_and_not_found(emu, tmp_path):
    s = pat_server(emu)
    with pytest.raises(ServerResponseError) as forbidden:
        s.workbooks.download(WB_LOCKED, filepath=str(tmp_path))
    assert forbidden.value.code == "403019"
    path = s.workbooks.download(WB_LOCKED, filepath=str(tmp_path), include_extract=False)
    assert os.path.basename(path) == "Locked.twb"
    assert sha(path) == sha(os.path.join(FIXTURES, "RESTAPISample.twb"))
    with pytest.raises(ServerResponseError) as missing:
        s.workbooks.get_by_id("00000000-0000-0000-0000-000000000000")
    assert missing.value.code == "404006"


def test_revisions(emu, tmp_path):
    s = pat_server(emu)
    wb = s.workbooks.get_by_id(WB_SUPERSTORE)
    s.workbooks.populate_revisions(wb)
    assert [(r.revision_number, r.current, r.deleted) for r in wb.revisions] == [
        ("1", False, False),
        ("2", False, True),
        ("3", True, False),
    ]
    path = s.workbooks.download_revision(WB_SUPERSTORE, "1", str(tmp_path))
    with open(path, "rb") as f:
        assert f.read() == b"revision one"
    with pytest.raises(ServerResponseError) as gone:
        s.workbooks.download_revision(WB_SUPERSTORE, "2", str(tmp_path))
    assert gone.value.code == "404024"


def test_throttle_and_expired_tokens(emu):
    s = pat_server(emu)
    emu.control("faults", {"throttle": {"count": 1, "retry_after": 2, "path_contains": "/workbooks"}})
    with pytest.raises(ServerResponseError) as throttled:
        s.workbooks.get()
    assert throttled.value.code == "429000"
    assert s.workbooks.get()[1].total_available == SEEDED_WORKBOOKS
    emu.control("faults", {"expire_tokens": True})
    with pytest.raises(FailedSignInError) as expired:
        s.projects.get()
    assert expired.value.code == "401002"
    assert emu.state()["session_conflicts"] == 0  # expiry is not a PAT conflict


def test_publish_small_sync_then_conflict_then_overwrite(emu):
    s = pat_server(emu)
    twb = os.path.join(FIXTURES, "RESTAPISample.twb")
    item = TSC.WorkbookItem(P_FINANCE, name="RESTAPISample")
    conn = TSC.ConnectionItem()
    conn.server_address = "db.example"
    conn.connection_credentials = TSC.ConnectionCredentials("dbuser", "dbpw", embed=True)
    made = s.workbooks.publish(item, twb, TSC.Server.PublishMode.CreateNew, connections=[conn])
    assert made.name == "RESTAPISample" and made.project_id == P_FINANCE and made.owner_id == ADMIN
    with pytest.raises(ServerResponseError) as exists:
        s.workbooks.publish(TSC.WorkbookItem(P_FINANCE, name="RESTAPISample"), twb, "CreateNew")
    assert exists.value.code == "403007"
    again = s.workbooks.publish(TSC.WorkbookItem(P_FINANCE, name="RESTAPISample"), twb, "Overwrite")
    assert again.id == made.id
    published = emu.state()["published"]
    assert [(p["overwrite"], p["replaced"], p["chunked"]) for p in published] == [(False, False, False), (True, True, False)]
    assert published[0]["sha256"] == sha(twb)
    assert published[0]["connections"] == [
        {"serverAddress": "db.example", "credentials": {"name": "dbuser", "password": "dbpw", "embed": "true"}}
    ]
    assert hashlib.sha256(emu.control(f"published/{DEFAULT_SITE}/{made.id}/content")).hexdigest() == sha(twb)
    wb = s.workbooks.get_by_id(made.id)
    s.workbooks.populate_revisions(wb)
    assert [r.revision_number for r in wb.revisions] == ["1", "2"]


def test_single_request_over_the_limit_is_refused(emu, tmp_path):
    emu.control("settings", {"single_publish_max_bytes": 1000})
    s = pat_server(emu)
    with pytest.raises(ServerResponseError) as refused:
        s.workbooks.publish(TSC.WorkbookItem(P_DEFAULT), os.path.join(FIXTURES, "SampleWB.twbx"), "CreateNew")
    assert refused.value.code == "400011"


def test_publish_large_chunked_as_job(emu, tmp_path):
    big = tmp_path / "Large.twbx"
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(65):
            f.write(block[:-8] + i.to_bytes(8, "big"))
        f.write(b"tail")
    s = pat_server(emu)
    job = s.workbooks.publish(TSC.WorkbookItem(P_REPORTS), str(big), "Overwrite", as_job=True)
    assert job.type == "PublishWorkbook" and job.completed_at is None
    assert emu.state()["published"][0]["status"] == "pending"
    done = s.jobs.wait_for_job(job)
    assert done.finish_code == 0 and done.completed_at is not None and done.workbook_id
    state = emu.state()
    record = state["published"][0]
    assert record["chunked"] and record["bytes"] == os.path.getsize(big) and record["sha256"] == sha(big)
    assert state["route_counts"]["PUT fileUploads.append"] == 2
    # two unfinished polls (the second already shows finishCode), then the completed one
    assert state["route_counts"]["GET jobs.get"] == 3
    assert s.workbooks.get_by_id(done.workbook_id).name == "Large"


def test_a_job_nobody_polls_completes_with_job_seconds(emu):
    emu.control("settings", {"job_seconds": 0})
    s = pat_server(emu)
    s.workbooks.publish(
        TSC.WorkbookItem(P_DEFAULT), os.path.join(FIXTURES, "SampleWB.twbx"), "CreateNew", as_job=True
    )
    # The next request finds the job done, its workbook there, though nobody asked after it.
    assert [w.name for w in s.workbooks.filter(name="SampleWB")] == ["SampleWB"]
    assert emu.state()["published"][0]["status"] == "done"
    assert "GET jobs.get" not in emu.state()["route_counts"]


def test_failed_job(emu):
    emu.control("faults", {"fail_job": True})
    s = pat_server(emu)
    job = s.workbooks.publish(
        TSC.WorkbookItem(P_DEFAULT), os.path.join(FIXTURES, "SampleWB.twbx"), "CreateNew", as_job=True
    )
    with pytest.raises(JobFailedException):
        s.jobs.wait_for_job(job)
    assert emu.state()["published"][0]["status"] == "failed"
    assert [w.name for w in s.workbooks.filter(name="SampleWB")] == []


def test_update_workbook_owner(emu):
    s = pat_server(emu)
    wb = s.workbooks.get_by_id(WB_SUPERSTORE)
    users = {u.name: u.id for u in TSC.Pager(s.users)}
    other = next(uid for name, uid in users.items() if uid != wb.owner_id)
    wb.owner_id = other
    updated = s.workbooks.update(wb)
    assert updated.owner_id == other
    assert s.workbooks.get_by_id(WB_SUPERSTORE).owner_id == other
    wb.owner_id = "no-such-user"
    with pytest.raises(ServerResponseError) as err:
        s.workbooks.update(wb)
    assert err.value.code == "404002"

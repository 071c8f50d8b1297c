"""The emulated server's content (sites, users, projects, workbooks) and how a world is seeded.

Everything mutable lives in one `State` guarded by one lock: requests are served on many
threads, and tests read the same state through the control API while clients work.
"""

import re
import threading
import time
import uuid

import content as content_mod
from faults import Faults
from sessions import Sessions

DEFAULT_SETTINGS = {
    "job_polls": 2,  # polls that see a publish job unfinished; the next one sees it completed
    "job_seconds": None,  # with a number, a publish job that old completes at the next request, polled or not
    "early_finish_code": True,  # the last unfinished poll already carries finishCode (no completedAt)
    "publish_job_finish_code": "1",  # the asJob publish answer carries finishCode="1", as the fixture does
    "single_publish_max_bytes": 64 * 1024 * 1024,  # larger single-request publishes get 400011
    "append_max_bytes": 64 * 1024 * 1024,  # larger fileUploads appends get 400016
    "max_page_size": 1000,
    "session_ttl_seconds": None,
}


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_id():
    return str(uuid.uuid4())


class Site:
    def __init__(self, id, name, content_url, attrs=None):
        self.id, self.name, self.content_url = id, name, content_url
        self.attrs = dict(attrs or {})
        self.users, self.projects, self.workbooks = {}, {}, {}


class User:
    def __init__(self, spec):
        self.id = spec.get("id") or new_id()
        self.name = spec["name"]
        self.site_role = spec.get("siteRole", "SiteAdministratorCreator")
        self.full_name = spec.get("fullName")
        self.email = spec.get("email")
        self.last_login = spec.get("lastLogin")


class Project:
    def __init__(self, spec):
        self.id = spec.get("id") or new_id()
        self.name = spec["name"]
        self.description = spec.get("description", "")
        self.parent_id = spec.get("parentProjectId")
        self.owner_id = spec.get("ownerId")
        self.content_permissions = spec.get("contentPermissions", "ManagedByOwner")


class Revision:
    def __init__(self, number, published_at, publisher_id, content, deleted=False, current=False):
        self.number, self.published_at, self.publisher_id = int(number), published_at, publisher_id
        self.content, self.deleted, self.current = content, deleted, current


class Workbook:
    """One workbook; `content` is what a download with its extract serves."""

    def __init__(self, spec, fixtures_dir, default_owner):
        self.id = spec.get("id") or new_id()
        self.name = spec["name"]
        self.project_id = spec.get("projectId")
        self.owner_id = spec.get("ownerId") or default_owner
        self.created_at = spec.get("createdAt") or now()
        self.updated_at = spec.get("updatedAt") or self.created_at
        self.description = spec.get("description", "")
        self.tags = list(spec.get("tags", []))
        self.content_url = spec.get("contentUrl") or content_url_for(self.name)
        self.webpage_url = spec.get("webpageUrl") or f"http://tableau.emulator/#/workbooks/{self.content_url}"
        self.show_tabs = bool(spec.get("showTabs", False))
        self.size_mb = spec.get("size")
        self.twb = bool(spec.get("twb", False))
        self.extract_forbidden = bool(spec.get("extract_forbidden", False))
        self.disposition = spec.get("disposition", "plain")
        if self.disposition not in ("plain", "rfc5987"):
            raise ValueError(f"workbook {self.name!r}: disposition must be plain or rfc5987")
        self.connections = list(spec.get("connections", []))
        self.views = list(spec.get("views", [])) or [default_view(self)]
        self.content = content_mod.from_spec(spec, fixtures_dir) or content_mod.Content(data=b"")
        no_extract = spec.get("no_extract")
        self.no_extract = content_mod.from_spec(no_extract, fixtures_dir) if no_extract else None
        self.no_extract_twb = bool((no_extract or {}).get("twb", self.twb))
        self.revisions = [self._revision(r, fixtures_dir) for r in spec.get("revisions", [])]
        if not self.revisions:
            self.revisions = [Revision(1, self.updated_at, self.owner_id, None, current=True)]
        if not any(r.current for r in self.revisions):
            max(self.revisions, key=lambda r: r.number).current = True

    def _revision(self, spec, fixtures_dir):
        return Revision(
            spec["number"],
            spec.get("publishedAt") or self.updated_at,
            spec.get("publisherId", self.owner_id),
            content_mod.from_spec(spec, fixtures_dir),
            bool(spec.get("deleted", False)),
            bool(spec.get("current", False)),
        )

    def revision_content(self, rev):
        # A revision seeded without bytes serves the workbook's own bytes.
        return rev.content or self.content


def default_view(wb):
    return {"id": new_id(), "name": "Sheet 1", "contentUrl": f"{wb.content_url}/sheets/Sheet1"}


def content_url_for(name):
    # Tableau keeps only ASCII letters and digits of a name in its contentUrl.
    return re.sub(r"[^A-Za-z0-9]", "", name) or "_"


def unique_content_url(site, name):
    base = content_url_for(name)
    taken = {wb.content_url for wb in site.workbooks.values()}
    if base not in taken:
        return base
    n = 0
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


class State:
    def __init__(self, fixtures_dir):
        self.lock = threading.RLock()
        self.fixtures_dir = fixtures_dir
        self.reset({})

    def reset(self, world):
        with self.lock:
            server = world.get("server", {})
            self.rest_api_version = str(server.get("restApiVersion", "3.19"))
            self.product_version = server.get("productVersion", "2023.1.0")
            self.build = server.get("build", "20231.23.0324.0818")
            self.settings = dict(DEFAULT_SETTINGS)
            unknown = sorted(set(world.get("settings", {})) - set(DEFAULT_SETTINGS))
            if unknown:
                raise ValueError(f"unknown settings {unknown}")
            self.settings.update(world.get("settings", {}))
            creds = world.get("credentials", {})
            self.pats = {}
            for name, value in creds.get("pats", {}).items():
                value = value if isinstance(value, dict) else {"secret": value}
                self.pats[name] = {"secret": value["secret"], "user": value.get("user")}
            self.passwords = dict(creds.get("users", {}))
            self.sites = {}
            for site_spec in world.get("sites", []):
                self.add_site(site_spec)
            self.sessions = Sessions()
            self.faults = Faults()
            self.jobs, self.uploads = {}, {}
            self.published, self.projects_created, self.requests = [], [], []
            self.published_content = {}  # (site id, workbook id) -> the bytes last published
            self.route_counts = {}

    def add_site(self, spec):
        s = Site(spec.get("id") or new_id(), spec["name"], spec.get("contentUrl", ""), spec.get("attrs"))
        if any(o.content_url.lower() == s.content_url.lower() for o in self.sites.values()):
            raise ValueError(f"two sites with contentUrl {s.content_url!r}")
        self.sites[s.id] = s
        for u in spec.get("users", []):
            user = User(u)
            s.users[user.id] = user
        for p in spec.get("projects", []):
            proj = Project(p)
            s.projects[proj.id] = proj
        for p in s.projects.values():
            if p.parent_id is not None and p.parent_id not in s.projects:
                raise ValueError(f"project {p.name!r}: parent {p.parent_id} is not a project of the site")
        for w in spec.get("workbooks", []):
            self.put_workbook(s, w)
        return s

    def default_owner(self, site):
        return next(iter(site.users), None) or str(uuid.uuid5(uuid.NAMESPACE_URL, "owner:" + site.id))

    def put_workbook(self, site, spec):
        """Adds a workbook, or replaces the fields given for an existing one."""
        old = site.workbooks.get(spec.get("id"))
        if old is None:
            wb = Workbook(spec, self.fixtures_dir, self.default_owner(site))
        else:
            merged = self.workbook_spec(old)
            merged.update(spec)
            wb = Workbook(merged, self.fixtures_dir, self.default_owner(site))
            # Fields the update does not name keep their old values, bytes included.
            if not any(spec.get(k) is not None for k in content_mod.SPEC_KEYS):
                wb.content = old.content
            if "no_extract" not in spec:
                wb.no_extract, wb.no_extract_twb = old.no_extract, old.no_extract_twb
            if "revisions" not in spec:
                wb.revisions = old.revisions
        if wb.project_id is not None and wb.project_id not in site.projects:
            raise ValueError(f"workbook {wb.name!r}: project {wb.project_id} is not a project of the site")
        site.workbooks[wb.id] = wb
        return wb

    @staticmethod
    def workbook_spec(wb):
        return {
            "id": wb.id,
            "name": wb.name,
            "projectId": wb.project_id,
            "ownerId": wb.owner_id,
            "createdAt": wb.created_at,
            "updatedAt": wb.updated_at,
            "description": wb.description,
            "tags": wb.tags,
            "contentUrl": wb.content_url,
            "webpageUrl": wb.webpage_url,
            "showTabs": wb.show_tabs,
            "size": wb.size_mb,
            "twb": wb.twb,
            "extract_forbidden": wb.extract_forbidden,
            "disposition": wb.disposition,
            "connections": wb.connections,
            "views": wb.views,
        }

    def site_by_ref(self, ref):
        """A site by id or by contentUrl (the control API accepts either)."""
        if ref in self.sites:
            return self.sites[ref]
        if ref in ("default", "Default"):
            ref = ""
        for s in self.sites.values():
            if s.content_url.lower() == ref.lower():
                return s
        return None

    def site_by_content_url(self, content_url):
        for s in self.sites.values():
            if s.content_url.lower() == (content_url or "").lower():
                return s
        return None

    def summary(self):
        """The seeded world with every id filled in, so a test can learn generated ids."""
        out = []
        for s in self.sites.values():
            out.append(
                {
                    "id": s.id,
                    "name": s.name,
                    "contentUrl": s.content_url,
                    "users": [{"id": u.id, "name": u.name} for u in s.users.values()],
                    "projects": [
                        {"id": p.id, "name": p.name, "parentProjectId": p.parent_id} for p in s.projects.values()
                    ],
                    "workbooks": [
                        {"id": w.id, "name": w.name, "projectId": w.project_id, "bytes": w.content.size}
                        for w in s.workbooks.values()
                    ],
                }
            )
        return {"sites": out}

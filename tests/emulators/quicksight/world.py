"""Emulator state: settings, accounts, assets, faults and counters.

Everything lives behind one re-entrant lock (`World.lock`). Handlers take it
for the whole operation, so a request sees and leaves a consistent world;
the volumes in tests are small, so one lock costs nothing measurable.
"""

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections import OrderedDict

# Asset kinds as they appear in ARNs and bundle entries, with the plural key
# the world JSON uses and the kinds a plain-id dependency may name, searched
# in order (a dashboard may depend on an analysis or directly on a dataset).
KINDS = OrderedDict(
    [
        ("datasource", {"plural": "datasources", "dep_kinds": []}),
        ("dataset", {"plural": "datasets", "dep_kinds": ["datasource"]}),
        ("analysis", {"plural": "analyses", "dep_kinds": ["dataset"]}),
        ("dashboard", {"plural": "dashboards", "dep_kinds": ["analysis", "dataset"]}),
    ]
)

DEFAULT_SETTINGS = {
    "page_size": 100,
    "polls_per_status": 1,
    "url_ttl_seconds": 300,
    "max_concurrent_exports": 5,
    "max_concurrent_imports": 5,
    "fail_export_if_more_than": None,
    # With a number, a job that old finishes at the next request, polled or not (as a
    # killed client's jobs do on QuickSight).
    "job_seconds": None,
    "s3_endpoint": None,
    # Data source types whose assets the export refuses (QuickSight cannot
    # bundle some connectors); a seeded datasource may also say exportable:false.
    "unexportable_datasource_types": [],
    # Region assumed for requests without a SigV4 Authorization header (curl).
    "default_region": "us-east-1",
}

ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
ARN_RE = re.compile(r"^arn:aws[a-z-]*:quicksight:([a-z0-9-]+):([0-9]{12}):([A-Za-z-]+)/(.+)$")


class ApiError(Exception):
    """An AWS-style error: code is the model's shape name, status from its trait."""

    STATUS = {
        "AccessDeniedException": 401,
        "InvalidParameterValueException": 400,
        "InvalidNextTokenException": 400,
        "ResourceNotFoundException": 404,
        "LimitExceededException": 409,
        "ConflictException": 409,
        "ResourceExistsException": 409,
        "PreconditionNotMetException": 400,
        "ThrottlingException": 429,
        "InternalFailureException": 500,
        "UnsupportedUserEditionException": 403,
    }

    def __init__(self, code, message, resource_type=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = self.STATUS.get(code, 400)
        self.resource_type = resource_type


def now():
    # Millisecond precision, like QuickSight's own timestamps.
    return round(time.time(), 3)


def arn(region, account, kind, rest):
    return f"arn:aws:quicksight:{region}:{account}:{kind}/{rest}"


def parse_arn(value):
    """(region, account, kind, id) or None."""
    m = ARN_RE.match(value or "")
    return m.groups() if m else None


def short_id(*parts):
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:20]


class World:
    def __init__(self):
        self.lock = threading.RLock()
        self.secret = uuid.uuid4().hex  # signs download URLs
        self.reset({})

    # ---------------------------------------------------------------- seeding
    def reset(self, spec):
        with self.lock:
            self.settings = dict(DEFAULT_SETTINGS)
            self.settings.update(spec.get("settings") or {})
            self.accounts = {}
            self.export_jobs = OrderedDict()  # (account, region, id) -> job
            self.import_jobs = OrderedDict()
            self.calls = {}
            self.errors = {}
            self.faults = {"throttle": [], "errors": [], "fail_next_export": 0, "fail_export_arn_contains": None, "fail_next_import": 0, "expire_next_urls": 0}
            self.max_running = {"export": 0, "import": 0}
            for account_id, acc in (spec.get("accounts") or {}).items():
                self._seed_account(account_id, acc or {})

    def _seed_account(self, account_id, spec):
        if not ACCOUNT_RE.match(account_id):
            raise ValueError(f"account id {account_id!r} is not 12 digits")
        identity = spec.get("identity_region") or self.settings["default_region"]
        namespaces = list(spec.get("namespaces") or ["default"])
        acc = {
            "identity_region": identity,
            "namespaces": OrderedDict((ns, {"users": OrderedDict(), "groups": OrderedDict()}) for ns in namespaces),
            "regions": {},
        }
        self.accounts[account_id] = acc
        for u in spec.get("users") or []:
            self.add_user(account_id, u.get("namespace", "default"), u)
        for g in spec.get("groups") or []:
            self.add_group(account_id, g.get("namespace", "default"), g["name"], g.get("description"), g.get("principal_id"))
        for m in spec.get("memberships") or []:
            ns = m.get("namespace", "default")
            member = m.get("member") or m.get("user")
            if member not in acc["namespaces"][ns]["users"]:
                raise ValueError(f"membership names unknown user {member!r}")
            self.group(account_id, ns, m["group"])["members"].append(member)
        for region, rspec in (spec.get("regions") or {}).items():
            store = self.region_store(account_id, region)
            for kind, info in KINDS.items():
                for item in _expand(rspec.get(info["plural"]), kind):
                    self._seed_asset(account_id, region, store, kind, item)

    def _seed_asset(self, account_id, region, store, kind, item):
        asset_id = item["id"]
        deps = []
        for dep in item.get("deps") or []:
            deps.append(self._resolve_dep(store, kind, dep, asset_id))
        created = item.get("created", now())
        asset = {
            "kind": kind,
            "id": asset_id,
            "name": item.get("name", asset_id),
            "arn": arn(region, account_id, kind, asset_id),
            "created": created,
            "updated": item.get("updated", created),
            "deps": deps,
            "exportable": item.get("exportable", True),
            "definition": item.get("definition"),
            "permissions": item.get("permissions") or [],
            "tags": item.get("tags") or [],
        }
        if kind == "datasource":
            asset["type"] = item.get("type", "ATHENA")
            asset["parameters"] = item.get("parameters")
        if kind == "dataset":
            asset["import_mode"] = item.get("import_mode", "SPICE")
        store[kind][asset_id] = asset

    def _resolve_dep(self, store, kind, dep, owner):
        """A seeded dependency: 'kind/id', an ARN, or a plain id searched by kind."""
        parsed = parse_arn(dep)
        if parsed:
            dep = f"{parsed[2]}/{parsed[3]}"
        if "/" in dep:
            dkind, did = dep.split("/", 1)
            candidates = [dkind]
        else:
            did, candidates = dep, KINDS[kind]["dep_kinds"]
        for dkind in candidates:
            if did in store.get(dkind, {}):
                return (dkind, did)
        raise ValueError(f"{kind} {owner!r} depends on unknown {dep!r} (seed dependencies first)")

    def region_store(self, account_id, region):
        regions = self.accounts[account_id]["regions"]
        if region not in regions:
            regions[region] = {kind: OrderedDict() for kind in KINDS}
        return regions[region]

    # ------------------------------------------------------------ identities
    def add_user(self, account_id, ns, u):
        acc = self.accounts[account_id]
        name = u["name"]
        identity_type = u.get("identity_type", "QUICKSIGHT")
        prefix = "federated/iam/" if identity_type == "IAM" else "user/d-"
        user = {
            "name": name,
            "email": u.get("email", f"{name.split('/')[-1]}@example.com"),
            "role": u.get("role", "READER"),
            "identity_type": identity_type,
            "active": u.get("active", True),
            "principal_id": u.get("principal_id") or prefix + short_id(account_id, ns, "user", name),
            "arn": u.get("arn") or arn(acc["identity_region"], account_id, "user", f"{ns}/{name}"),
            "iam_arn": u.get("iam_arn"),
            "custom_permissions_name": u.get("custom_permissions_name"),
        }
        acc["namespaces"][ns]["users"][name] = user
        return user

    def add_group(self, account_id, ns, name, description=None, principal_id=None):
        acc = self.accounts[account_id]
        group = {
            "name": name,
            "description": description,
            "principal_id": principal_id or "group/d-" + short_id(account_id, ns, "group", name),
            "arn": arn(acc["identity_region"], account_id, "group", f"{ns}/{name}"),
            "members": [],
        }
        acc["namespaces"][ns]["groups"][name] = group
        return group

    def group(self, account_id, ns, name):
        groups = self.accounts[account_id]["namespaces"][ns]["groups"]
        if name not in groups:
            raise ApiError("ResourceNotFoundException", f"Group {name} not found in namespace {ns}", "GROUP")
        return groups[name]

    # ---------------------------------------------------------------- access
    def account(self, account_id):
        if not ACCOUNT_RE.match(account_id or ""):
            raise ApiError("InvalidParameterValueException", f"AwsAccountId {account_id!r} must be 12 digits")
        if account_id not in self.accounts:
            raise ApiError("ResourceNotFoundException", f"Account {account_id} is not signed up with QuickSight", "ACCOUNT_SETTINGS")
        return self.accounts[account_id]

    def namespace(self, account_id, region, ns):
        """The namespace of a user/group call, enforcing the identity region as QuickSight does."""
        acc = self.account(account_id)
        identity = acc["identity_region"]
        if region != identity:
            raise ApiError(
                "AccessDeniedException",
                f"Operation is being called from endpoint {region}, but your identity region is "
                f"{identity}. Please use the {identity} endpoint.",
            )
        if ns not in acc["namespaces"]:
            raise ApiError("ResourceNotFoundException", f"Namespace {ns} not found", "NAMESPACE")
        return acc["namespaces"][ns]

    # ---------------------------------------------------------------- paging
    def paginate(self, items, query, listing):
        """One page of `items` and the NextToken for the rest.

        The token carries the offset and names the listing it belongs to, so a
        token from another listing is rejected like QuickSight does.
        """
        items = list(items)
        raw_max = query.get("max-results")
        limit = 100
        if raw_max is not None:
            try:
                limit = int(raw_max)
            except ValueError:
                raise ApiError("InvalidParameterValueException", f"MaxResults {raw_max!r} is not a number")
            if not 1 <= limit <= 100:
                raise ApiError("InvalidParameterValueException", "MaxResults must be between 1 and 100")
        limit = min(limit, int(self.settings.get("page_size") or 100))
        start = 0
        token = query.get("next-token")
        if token:
            try:
                data = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, owner = int(data["o"]), data["l"]
            except Exception:
                raise ApiError("InvalidNextTokenException", "The NextToken is not valid")
            if owner != listing or start < 0:
                raise ApiError("InvalidNextTokenException", "The NextToken does not belong to this listing")
        page = items[start : start + limit]
        next_token = None
        if start + limit < len(items):
            raw = json.dumps({"o": start + limit, "l": listing}).encode()
            next_token = base64.urlsafe_b64encode(raw).decode()
        return page, next_token

    # ---------------------------------------------------------------- faults
    def add_faults(self, spec):
        with self.lock:
            if "throttle" in spec:
                t = spec["throttle"]
                self.faults["throttle"].append({"operation": t.get("operation"), "count": int(t.get("count", 1))})
            for e in spec.get("errors") or []:
                self.faults["errors"].append(
                    {"operation": e.get("operation"), "count": int(e.get("count", 1)), "code": e["code"], "message": e.get("message")}
                )
            if spec.get("fail_next_export"):
                self.faults["fail_next_export"] += int(spec["fail_next_export"])
            if "fail_export_arn_contains" in spec:
                # Only exports of a resource whose ARN contains this fail (null: any export).
                self.faults["fail_export_arn_contains"] = spec["fail_export_arn_contains"]
            if spec.get("fail_next_import"):
                self.faults["fail_next_import"] += int(spec["fail_next_import"])
            if spec.get("expire_next_urls"):
                self.faults["expire_next_urls"] += int(spec["expire_next_urls"])
            if spec.get("clear"):
                self.faults = {"throttle": [], "errors": [], "fail_next_export": 0, "fail_export_arn_contains": None, "fail_next_import": 0, "expire_next_urls": 0}

    def take_expired_url(self):
        """Whether the next DownloadUrl should be already expired (fault `expire_next_urls`)."""
        with self.lock:
            if self.faults.get("expire_next_urls", 0) > 0:
                self.faults["expire_next_urls"] -= 1
                return True
            return False

    def injected_error(self, op):
        """The fault this call of `op` should answer with, consuming one use."""
        for entry in self.faults["throttle"]:
            if entry["count"] > 0 and entry["operation"] in (None, op):
                entry["count"] -= 1
                return ApiError("ThrottlingException", "Rate exceeded")
        for entry in self.faults["errors"]:
            if entry["count"] > 0 and entry["operation"] in (None, op):
                entry["count"] -= 1
                return ApiError(entry["code"], entry["message"] or f"Injected {entry['code']}")
        return None

    def take_fault(self, name):
        if self.faults[name] > 0:
            self.faults[name] -= 1
            return True
        return False

    def record_call(self, op, error_code=None):
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            if error_code:
                per_op = self.errors.setdefault(op, {})
                per_op[error_code] = per_op.get(error_code, 0) + 1


def _expand(spec, kind):
    """Seeded assets of one kind: a list of assets and/or generators, or one generator."""
    if spec is None:
        return []
    if isinstance(spec, dict):
        spec = [spec]
    out = []
    for item in spec:
        if "generate" not in item:
            out.append(item)
            continue
        prefix = item.get("prefix", kind)
        name_prefix = item.get("name_prefix", kind.capitalize())
        template = {k: v for k, v in item.items() if k not in ("generate", "prefix", "name_prefix")}
        for i in range(1, int(item["generate"]) + 1):
            out.append(dict(template, id=f"{prefix}-{i:04d}", name=f"{name_prefix} {i}"))
    return out

"""Faults a test arms through POST /_emulator/faults.

Each rule matches Tableau API requests (never the control API) by an optional method and a
substring of the path-with-query, and fires for its next `count` matches (count null: forever).
"""

RULE_KINDS = ("throttle", "error", "delay", "truncate")

_DEFAULTS = {
    "throttle": {"count": 1, "retry_after": 1},
    "error": {"count": 1, "status": 500, "code": None, "summary": "Internal Server Error", "detail": "Injected fault"},
    "delay": {"count": 1, "seconds": 1.0},
    "truncate": {"count": 1, "after_bytes": 0},
}


class Faults:
    def __init__(self):
        self.rules = {kind: [] for kind in RULE_KINDS}
        self.fail_jobs = 0  # the next N jobs to finish end with finishCode=1
        self.fired = {kind: 0 for kind in RULE_KINDS}

    def add(self, spec):
        if spec.get("clear"):
            self.rules = {kind: [] for kind in RULE_KINDS}
            self.fail_jobs = 0
        for kind in RULE_KINDS:
            if kind in spec:
                entries = spec[kind] if isinstance(spec[kind], list) else [spec[kind]]
                for entry in entries:
                    rule = dict(_DEFAULTS[kind])
                    rule.update(entry)
                    self.rules[kind].append(rule)
        fail = spec.get("fail_job")
        if fail is True:
            self.fail_jobs += 1
        elif isinstance(fail, dict):
            self.fail_jobs += int(fail.get("count", 1))
        elif isinstance(fail, int) and not isinstance(fail, bool):
            self.fail_jobs += fail

    def take(self, kind, method, path):
        """The first armed rule of `kind` matching this request, using up one of its count."""
        for rule in self.rules[kind]:
            if rule.get("method") and rule["method"].upper() != method:
                continue
            if rule.get("path_contains") and rule["path_contains"] not in path:
                continue
            if rule["count"] is not None:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    self.rules[kind].remove(rule)
            self.fired[kind] += 1
            return rule
        return None

    def take_job_failure(self):
        if self.fail_jobs > 0:
            self.fail_jobs -= 1
            return True
        return False

    def summary(self):
        return {"armed": self.rules, "fail_jobs": self.fail_jobs, "fired": self.fired}

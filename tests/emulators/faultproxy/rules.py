"""Fault rules (what a test arms through the control API) and the proxy's state: the rules, the
random generator they draw from, and the statistics.  See README.md, "Rules"."""

import random
import re
import threading

FAULTS = ("slowdown", "internal", "throttling", "reset", "stall", "short_body", "replace_source")
# Faults answered instead of the upstream's answer (before or after forwarding).
STATUS_FAULTS = ("slowdown", "internal", "throttling")
RULE_FIELDS = ("name", "fault", "rate", "nth", "operations", "path", "method", "max", "when",
               "body", "body_repeat", "seconds")
MAX_INJECTED = 10_000  # entries kept in stats["injected"]; the counters go on counting


class RuleError(ValueError):
    """A malformed control body: `field` is where (`rules[2].rate`), the message what is allowed."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class Rule:
    def __init__(self, spec, index):
        """Checks the JSON of rules[index]; a RuleError names the field (`rules[0].rate`)."""
        field = f"rules[{index}]"
        if not isinstance(spec, dict):
            raise RuleError(field, "a rule is a JSON object")
        unknown = sorted(set(spec) - set(RULE_FIELDS))
        if unknown:
            raise RuleError(f"{field}.{unknown[0]}", f"unknown field; allowed: {', '.join(RULE_FIELDS)}")
        self.spec = spec
        self.fault = self._fault(spec, field)
        self.name = spec.get("name", f"{self.fault}-{index + 1}")
        if not isinstance(self.name, str) or not self.name:
            raise RuleError(f"{field}.name", "a non-empty string")
        self.rate, self.nth = self._trigger(spec, field)
        self.operations = self._strings(spec, field, "operations")
        self.method = self._method(spec, field)
        self.path = self._path(spec, field)
        self.max = spec.get("max")
        if self.max is not None and not (_is_int(self.max) and self.max >= 1):
            raise RuleError(f"{field}.max", "an integer >= 1 (or absent: no cap)")
        self.when = self._when(spec, field)
        self.body = self._body(spec, field)
        self.seconds = spec.get("seconds")
        if self.seconds is not None and (self.fault != "stall" or not (_is_number(self.seconds) and self.seconds >= 0)):
            raise RuleError(f"{field}.seconds", 'a number >= 0, for "fault": "stall" only')
        self.seen = 0  # matching requests so far (what nth counts)
        self.injected = 0

    @staticmethod
    def _fault(spec, field):
        fault = spec.get("fault")
        if fault is None:
            raise RuleError(f"{field}.fault", f"required; one of {', '.join(FAULTS)}")
        if fault not in FAULTS:
            raise RuleError(f"{field}.fault", f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        return fault

    @staticmethod
    def _trigger(spec, field):
        rate, nth = spec.get("rate"), spec.get("nth")
        if (rate is None) == (nth is None):
            raise RuleError(f"{field}.rate", 'exactly one of "rate" (0..1) and "nth" (a list of 1-based counts)')
        if rate is not None and not (_is_number(rate) and 0 <= rate <= 1):
            raise RuleError(f"{field}.rate", "a number from 0 to 1")
        if nth is not None:
            if not (isinstance(nth, list) and nth and all(_is_int(n) and n >= 1 for n in nth)):
                raise RuleError(f"{field}.nth", "a non-empty list of integers >= 1")
            nth = frozenset(nth)
        return rate, nth

    @staticmethod
    def _strings(spec, field, key):
        values = spec.get(key)
        if values is None:
            return None
        if not (isinstance(values, list) and values and all(isinstance(v, str) and v for v in values)):
            raise RuleError(f"{field}.{key}", "a non-empty list of operation names")
        return frozenset(values)

    @staticmethod
    def _method(spec, field):
        method = spec.get("method")
        if method is not None and not (isinstance(method, str) and method.isalpha()):
            raise RuleError(f"{field}.method", "an HTTP method, e.g. \"PUT\"")
        return method.upper() if method else None

    @staticmethod
    def _path(spec, field):
        path = spec.get("path")
        if path is None:
            return None
        if not isinstance(path, str):
            raise RuleError(f"{field}.path", "a regular expression (a string)")
        try:
            return re.compile(path)
        except re.error as exc:
            raise RuleError(f"{field}.path", f"not a valid regular expression: {exc}") from None

    def _when(self, spec, field):
        when = spec.get("when")
        if self.fault == "replace_source":
            if when is not None:
                raise RuleError(f"{field}.when", 'not for "replace_source" (it acts before the copy)')
            return None
        if self.fault == "short_body":
            if when not in (None, "after"):
                raise RuleError(f"{field}.when", '"after" only: "short_body" cuts the upstream\'s answer')
            return "after"
        if when not in (None, "before", "after"):
            raise RuleError(f"{field}.when", '"before" (the default) or "after"')
        return when or "before"

    def _body(self, spec, field):
        body, repeat = spec.get("body"), spec.get("body_repeat")
        if self.fault != "replace_source":
            for key in ("body", "body_repeat"):
                if key in spec:
                    raise RuleError(f"{field}.{key}", 'for "fault": "replace_source" only')
            return None
        if (body is None) == (repeat is None):
            raise RuleError(f"{field}.body", 'exactly one of "body" (a string) and "body_repeat" ([text, count])')
        if body is not None:
            if not isinstance(body, str):
                raise RuleError(f"{field}.body", "a string (sent UTF-8 encoded)")
            return body.encode()
        if not (isinstance(repeat, list) and len(repeat) == 2 and isinstance(repeat[0], str)
                and _is_int(repeat[1]) and repeat[1] >= 0):
            raise RuleError(f"{field}.body_repeat", "[text, count]: a string and an integer >= 0")
        return repeat[0].encode() * repeat[1]

    def matches(self, call):
        if self.operations is not None and call.operation not in self.operations:
            return False
        if self.method is not None and call.method != self.method:
            return False
        if self.path is not None and not self.path.search(call.path):
            return False
        # Nothing to replace without a copy source; such a request is not this rule's to count.
        return self.fault != "replace_source" or call.copy_source is not None

    def fires(self, rng):
        """Whether this matching request (already counted in `seen`) gets the fault."""
        if self.max is not None and self.injected >= self.max:
            return False
        if self.nth is not None:
            return self.seen in self.nth
        return rng.random() < self.rate


def parse_body(body, allowed, required=()):
    """A control body's JSON object, its keys checked."""
    if not isinstance(body, dict):
        raise RuleError("body", "a JSON object")
    for key in body:
        if key not in allowed:
            raise RuleError(key, f"unknown field; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in body:
            raise RuleError(key, "required")
    return body


def parse_rules(specs):
    if not isinstance(specs, list):
        raise RuleError("rules", "a list of rule objects")
    rules, names = [], {}
    for index, spec in enumerate(specs):
        rule = Rule(spec, index)
        if rule.name in names:
            raise RuleError(f"rules[{index}].name", f"{rule.name!r} is already the name of rules[{names[rule.name]}]")
        names[rule.name] = index
        rules.append(rule)
    return rules


def parse_seed(seed):
    if seed is not None and not _is_int(seed):
        raise RuleError("seed", "an integer (or null: the --seed the proxy was started with)")
    return seed


class State:
    """The rules, the random generator and the statistics, under one lock: the order in which
    requests take the lock is the order in which rules count them and draw."""

    def __init__(self, seed):
        self.lock = threading.Lock()
        self.default_seed = seed
        self.reset([], None)

    def reset(self, rules, seed):
        with self.lock:
            self.rules = rules
            self.rng = random.Random(self.default_seed if seed is None else seed)
            self._clear_stats()

    def clear_stats(self):
        with self.lock:
            self._clear_stats()

    def _clear_stats(self):
        self.requests, self.faults, self.by_kind = {}, {}, {}
        self.injected = []
        self.preconditions_failed = 0

    def replace_rules(self, rules):
        with self.lock:
            self.rules = rules

    def decide(self, call):
        """Counts the request and returns the rule whose fault it gets, or None.  Every matching
        rule counts it (nth is per rule); the first that fires wins and later rules do not draw."""
        with self.lock:
            self.requests[call.operation] = self.requests.get(call.operation, 0) + 1
            chosen = None
            for rule in self.rules:
                if not rule.matches(call):
                    continue
                rule.seen += 1
                if chosen is None and rule.fires(self.rng):
                    chosen = rule
                    self._record(rule, call)
            return chosen

    def _record(self, rule, call):
        rule.injected += 1
        self.faults[rule.name] = self.faults.get(rule.name, 0) + 1
        self.by_kind[rule.fault] = self.by_kind.get(rule.fault, 0) + 1
        if len(self.injected) < MAX_INJECTED:
            self.injected.append({"rule": rule.name, "fault": rule.fault, "operation": call.operation,
                                  "method": call.method, "path": call.path, "n": rule.seen})

    def precondition_failed(self):
        with self.lock:
            self.preconditions_failed += 1

    def stats(self):
        with self.lock:
            return {"requests": dict(self.requests), "faults": dict(self.faults),
                    "faults_by_kind": dict(self.by_kind), "injected": list(self.injected),
                    "preconditions_failed": self.preconditions_failed}

    def rule_specs(self):
        with self.lock:
            return [dict(rule.spec, name=rule.name, seen=rule.seen, injected=rule.injected) for rule in self.rules]

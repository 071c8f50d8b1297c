"""Sign-in sessions and the personal-access-token rule.

Tableau allows one session per personal access token: signing in again with the same PAT
(on any site) ends the earlier session, whose token then answers 401002. A client that signs
in once per worker breaks its own workers that way, so every request that arrives with such a
replaced token is counted in `conflicts`, which tests assert stays 0.
"""

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

ACTIVE = "active"
REPLACED = "replaced"  # the same PAT signed in again
EXPIRED = "expired"  # the expire_tokens fault, or session_ttl_seconds
SIGNED_OUT = "signed_out"
SWITCHED = "switched"  # auth/switchSite gave the owner a new token


class Session:
    def __init__(self, kind, principal, user_name, user_id, site_id):
        self.kind, self.principal, self.user_name = kind, principal, user_name
        self.user_id, self.site_id = user_id, site_id
        # Newer servers hand out tokens with the user and site luids after a '|'.
        self.token = "".join(secrets.choice(_ALPHABET) for _ in range(32)) + f"|{user_id}|{site_id}"
        self.started = time.monotonic()
        self.state = ACTIVE


class Sessions:
    def __init__(self):
        self.by_token = {}
        self.conflicts = 0
        self.sign_ins = {}  # "pat:NAME" / "user:NAME" -> number of sign-ins

    def start(self, kind, principal, user_name, user_id, site_id):
        if kind == "pat":
            for s in self.by_token.values():
                if s.kind == "pat" and s.principal == principal and s.state == ACTIVE:
                    s.state = REPLACED
        key = f"{kind}:{principal}"
        self.sign_ins[key] = self.sign_ins.get(key, 0) + 1
        session = Session(kind, principal, user_name, user_id, site_id)
        self.by_token[session.token] = session
        return session

    def switch(self, old, site_id, user_id):
        """A new session for the same owner on another site; the old token stops working."""
        old.state = SWITCHED
        session = Session(old.kind, old.principal, old.user_name, user_id, site_id)
        self.by_token[session.token] = session
        return session

    def check(self, token, ttl_seconds):
        """The active session of a token, or (None, why it is not valid)."""
        session = self.by_token.get(token)
        if session is None:
            return None, "unknown"
        if session.state == ACTIVE and ttl_seconds is not None:
            if time.monotonic() - session.started > ttl_seconds:
                session.state = EXPIRED
        if session.state == ACTIVE:
            return session, None
        if session.state == REPLACED:
            self.conflicts += 1
        return None, session.state

    def expire_all(self):
        count = 0
        for s in self.by_token.values():
            if s.state == ACTIVE:
                s.state = EXPIRED
                count += 1
        return count

    def summary(self):
        by_pat, by_user = {}, {}
        for s in self.by_token.values():
            table = by_pat if s.kind == "pat" else by_user
            entry = table.setdefault(s.principal, {"active": 0, "ended": {}})
            if s.state == ACTIVE:
                entry["active"] += 1
            else:
                entry["ended"][s.state] = entry["ended"].get(s.state, 0) + 1
        for kind, table in (("pat", by_pat), ("user", by_user)):
            for principal, entry in table.items():
                entry["sign_ins"] = self.sign_ins.get(f"{kind}:{principal}", 0)
        return {
            "active": sum(1 for s in self.by_token.values() if s.state == ACTIVE),
            "by_pat": by_pat,
            "by_user": by_user,
        }

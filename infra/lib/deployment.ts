// The deployment config: Backline's job file with an [infra] section. The Rust side
// (`backline config check`) validates the schema; this reads the parts the stack needs.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseToml } from 'smol-toml';

export interface Efs {
  file_system_id: string;
  access_point_id: string;
  security_group_id: string;
  vpc_id: string;
  subnet_ids: string[];
  availability_zones: string[];
  mount_path?: string;
}

export interface Infra {
  stack_name: string;
  alarm_email?: string;
  create_buckets: string[];
  kms_key_arn?: string;
  noncurrent_expiry_days: number;
  deleted_expiry_days?: number;
  worker_timeout_seconds: number;
  worker_memory_mb: number;
  worker_max_concurrency: number;
  architecture: 'arm64' | 'x86_64';
  efs?: Efs;
}

/** A job as written in the file: the stack passes it on to the planner unchanged. */
export interface Job {
  name: string;
  kind: 's3' | 's3-restore' | string;
  schedule?: string;
  control?: { bucket: string; prefix?: string };
  source?: { bucket: string; prefix?: string };
  target?: { bucket?: string; prefix?: string; kms_key_id?: string; bucket_prefix?: string };
  backup_job?: string;
  backup?: {
    source?: { bucket: string; prefix?: string };
    target: { bucket?: string; prefix?: string; bucket_prefix?: string };
  };
  options?: { to_bucket: string };
  folders?: string[];
  roots?: string[];
  [field: string]: unknown;
}

export interface Deployment {
  infra: Infra;
  jobs: Job[];
}

const INFRA_DEFAULTS: Infra = {
  stack_name: 'Backline',
  create_buckets: [],
  noncurrent_expiry_days: 180,
  worker_timeout_seconds: 900,
  worker_memory_mb: 1024,
  worker_max_concurrency: 10,
  architecture: 'arm64',
};

export function loadDeployment(path: string): Deployment {
  const text = readFileSync(path, 'utf8');
  const ext = extname(path).toLowerCase();
  let raw: { infra?: Partial<Infra>; jobs?: Job[] };
  if (ext === '.toml') {
    raw = parseToml(text) as typeof raw;
  } else if (ext === '.json') {
    raw = JSON.parse(text) as typeof raw;
  } else {
    throw new Error(`${path}: the CDK app reads .toml or .json deployment configs`);
  }
  if (!raw.jobs?.length) {
    throw new Error(`${path}: no [[jobs]]; run \`backline config check ${path}\``);
  }
  return { infra: { ...INFRA_DEFAULTS, ...raw.infra }, jobs: raw.jobs };
}

/** The control location of a job, as the engine defaults it. */
export function controlOf(job: Job): { bucket: string; prefix: string } {
  if (job.control) return { bucket: job.control.bucket, prefix: job.control.prefix ?? '_backline/' };
  const bucket =
    job.kind === 's3-restore'
      ? job.backup!.target.bucket!
      : job.kind === 'filesystem'
        ? `${job.target!.bucket_prefix}-backline`
        : job.kind === 'filesystem-restore'
          ? `${job.backup!.target.bucket_prefix}-backline`
          : job.target!.bucket!;
  return { bucket, prefix: '_backline/' };
}

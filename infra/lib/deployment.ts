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

/**
 * A secret by reference, never by value: `env:NAME`, `ssm:/parameter/name` or
 * `secretsmanager:secret-id` (notify webhooks may also be a plain https:// URL).
 */
export type SecretReference = string;

/** `[[jobs.projects]]` of a tableau job: a site's project (with its sub-projects) into its own bucket. */
export interface ProjectTarget {
  site: string;
  project: string;
  bucket: string;
  prefix?: string;
}

/** A job as written in the file: the stack passes it on to the planner unchanged. */
export interface Job {
  name: string;
  kind:
    | 's3'
    | 's3-restore'
    | 'filesystem'
    | 'filesystem-restore'
    | 'tableau'
    | 'tableau-restore'
    | 'quicksight'
    | 'quicksight-restore'
    | string;
  schedule?: string;
  concurrency?: number;
  control?: { bucket: string; prefix?: string };
  /**
   * `s3`: `bucket` (and `prefix`); `tableau`: `server` and a token or user with its secret;
   * `quicksight`: `account_id`, `region` and `identity_region` (default: `region`), `namespace`.
   */
  source?: {
    bucket?: string;
    prefix?: string;
    server?: string;
    token_name?: string;
    token_secret?: SecretReference;
    username?: string;
    password?: SecretReference;
    sites?: string[];
    excluded_sites?: string[];
    account_id?: string;
    region?: string;
    identity_region?: string;
    namespace?: string;
  };
  /** `quicksight`: `bucket` and `prefix` for bundles, and the base names of its dated tables. */
  target?: {
    bucket?: string;
    prefix?: string;
    kms_key_id?: string;
    bucket_prefix?: string;
    storage_class?: string;
    users_table?: string;
    groups_table?: string;
    memberships_table?: string;
    prefix_format?: string;
  };
  /** `tableau`: projects whose workbooks go to a bucket of their own. */
  projects?: ProjectTarget[];
  /** `quicksight`: delete the job's dated tables older than this (`90d`) after a successful run. */
  keep_tables?: string;
  /** `quicksight`: what to back up. */
  mode?: 'full' | 'users-only' | 'assets-only';
  notify?: Notify;
  backup_job?: string;
  backup?: {
    /**
     * `s3-restore`: the bucket backed up; `tableau-restore`: the server and its credentials;
     * `quicksight-restore`: the account and regions backed up.
     */
    source?: Job['source'];
    target?: Pick<
      NonNullable<Job['target']>,
      'bucket' | 'prefix' | 'bucket_prefix' | 'users_table' | 'groups_table' | 'memberships_table' | 'prefix_format'
    >;
    projects?: ProjectTarget[];
    keep_tables?: string;
    mode?: Job['mode'];
  };
  /**
   * `s3-restore`: `to_bucket`; `quicksight-restore`: where to (`to_account`, `to_region`,
   * `to_identity_region`) and what (`users`, `assets`; neither: both).
   */
  options?: {
    to_bucket?: string;
    to_account?: string;
    to_region?: string;
    to_identity_region?: string;
    users?: boolean;
    assets?: boolean;
  };
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

/** `[notify]` and `[jobs.notify]`: each channel optional; URLs and DSNs are secret references. */
export interface Notify {
  teams_webhook?: SecretReference;
  slack_webhook?: SecretReference;
  webhook?: SecretReference;
  sentry_dsn?: SecretReference;
  sentry_environment?: string;
  zabbix?: { server: string; host: string; key_prefix?: string };
}

export function loadDeployment(path: string): Deployment {
  const text = readFileSync(path, 'utf8');
  const ext = extname(path).toLowerCase();
  let raw: { infra?: Partial<Infra>; jobs?: Job[]; notify?: Notify };
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
  // `[notify]` holds every job's defaults, as `backline config check` merges them: channel by
  // channel, a job's own wins.
  const jobs = raw.notify ? raw.jobs.map((job) => ({ ...job, notify: { ...raw.notify, ...job.notify } })) : raw.jobs;
  return { infra: { ...INFRA_DEFAULTS, ...raw.infra }, jobs };
}

/** The control location of a job, as the engine defaults it. */
export function controlOf(job: Job): { bucket: string; prefix: string } {
  if (job.control) return { bucket: job.control.bucket, prefix: job.control.prefix ?? '_backline/' };
  return { bucket: defaultControlBucket(job), prefix: '_backline/' };
}

function defaultControlBucket(job: Job): string {
  switch (job.kind) {
    case 's3-restore':
      return job.backup!.target!.bucket!;
    // Tableau: the target bucket, or the first project's when only projects are backed up.
    case 'tableau':
      return job.target?.bucket ?? job.projects![0].bucket;
    case 'tableau-restore':
      return job.backup!.target?.bucket ?? job.backup!.projects![0].bucket;
    case 'quicksight-restore':
      return job.backup!.target!.bucket!;
    case 'filesystem':
      return `${job.target!.bucket_prefix}-backline`;
    case 'filesystem-restore':
      return `${job.backup!.target!.bucket_prefix}-backline`;
    // s3 and quicksight: the target bucket.
    default:
      return job.target!.bucket!;
  }
}

/**
 * A `quicksight` spec (a job, or a `quicksight-restore` job's `backup`) with the engine's
 * defaults (shared/src/sources/quicksight/config.rs): the file is read as written, not as
 * `backline config check` completes it.
 */
export interface QuickSight {
  account: string;
  /** Where the assets are. */
  region: string;
  /** Where users and groups are: `identity_region`, or `region`. */
  identityRegion: string;
  bucket: string;
  /** Bundles go under `prefix/`, or at the top of the bucket when the prefix is empty. */
  prefix: string;
  /** The base names of the dated tables `YYYY-MM-DD-<base>`: users, groups, memberships. */
  tables: [string, string, string];
  /** Mode `full` or `users-only`: users, groups and memberships into the tables. */
  users: boolean;
  /** Mode `full` or `assets-only`: asset bundles into the bucket. */
  assets: boolean;
}

export function quickSightOf(spec: Pick<Job, 'source' | 'target' | 'mode'>): QuickSight {
  const source = spec.source!;
  const target = spec.target!;
  const mode = spec.mode ?? 'full';
  const prefix = (target.prefix ?? 'quicksight-backups').replace(/\/+$/, '');
  return {
    // A bare number in TOML reads as one; the engine takes its 12 digits.
    account: String(source.account_id),
    region: source.region!,
    identityRegion: source.identity_region ?? source.region!,
    bucket: target.bucket!,
    prefix: prefix ? `${prefix}/` : '',
    tables: [
      target.users_table ?? 'quicksight-users-backup',
      target.groups_table ?? 'quicksight-groups-backup',
      target.memberships_table ?? 'quicksight-users-groups-backup',
    ],
    users: mode !== 'assets-only',
    assets: mode !== 'users-only',
  };
}

// Least privilege per job kind: sources are read-only, targets writable, control locations
// read-write under their prefix. Every statement names its buckets; no resource is `*` except
// where the API has no resource-level permissions (documented at the statement).
import { Aws } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { controlOf, type Job, quickSightOf, type SecretReference } from './deployment.ts';

const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
const objectsArn = (bucket: string, prefix = '') => `arn:aws:s3:::${bucket}/${prefix}*`;
const unique = (values: string[]) => [...new Set(values)];

/**
 * The parameter `ssm:NAME` reads, in the stack's account and region. NAME is a name (`/a/b` or
 * `b`) or an ARN, either with an optional `:version` or `:label` selector, which is not part of
 * the resource.
 */
function parameterArn(name: string): string {
  if (name.startsWith('arn:')) {
    const at = name.indexOf(':parameter/') + ':parameter/'.length;
    return at < ':parameter/'.length ? name : name.slice(0, at) + name.slice(at).split(':')[0];
  }
  return `arn:aws:ssm:${Aws.REGION}:${Aws.ACCOUNT_ID}:parameter/${name.split(':')[0].replace(/^\//, '')}`;
}

/**
 * The secret `secretsmanager:ID` reads. A secret's ARN ends in six random characters after its
 * name, so a name matches `name-??????` (`?` is one character, never `*`); an ARN is taken as it is
 * (give the complete ARN: a partial one does not match the secret's).
 */
function secretArn(id: string): string {
  return id.startsWith('arn:') ? id : `arn:aws:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${id}-??????`;
}

/**
 * Reading secret references as `shared/src/secrets.rs` resolves them: SSM GetParameter (with
 * decryption) on each `ssm:` parameter, Secrets Manager GetSecretValue on each `secretsmanager:`
 * secret; `env:` references and plain URLs need nothing. Parameters and secrets encrypted with the
 * AWS managed keys (aws/ssm, aws/secretsmanager) need no KMS grant; a customer managed key must
 * allow these roles kms:Decrypt in its key policy.
 */
export function secretStatements(references: (SecretReference | undefined)[]): PolicyStatement[] {
  const parameters: string[] = [];
  const secrets: string[] = [];
  for (const reference of references) {
    if (reference?.startsWith('ssm:')) parameters.push(parameterArn(reference.slice('ssm:'.length)));
    else if (reference?.startsWith('secretsmanager:')) secrets.push(secretArn(reference.slice('secretsmanager:'.length)));
  }
  const statements: PolicyStatement[] = [];
  if (parameters.length) {
    statements.push(new PolicyStatement({ actions: ['ssm:GetParameter'], resources: unique(parameters) }));
  }
  if (secrets.length) {
    statements.push(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: unique(secrets) }));
  }
  return statements;
}

/** Everything of QuickSight's in one account and region (assets, users, groups, bundle jobs). */
const quickSightArn = (region: string, account: string) => `arn:aws:quicksight:${region}:${account}:*`;

/**
 * QuickSight actions that have no resource-level permissions (Service Authorization Reference):
 * `*`, held to the region by `aws:RequestedRegion`; IAM policies act in the role's own account.
 */
function quickSightUnscoped(actions: string[], region: string): PolicyStatement {
  return new PolicyStatement({
    actions,
    resources: ['*'],
    conditions: { StringEquals: { 'aws:RequestedRegion': region } },
  });
}

/**
 * A quicksight job's dated tables, `YYYY-MM-DD-<base>` for each base, in the stack's account and
 * region (the functions' DynamoDB client): `?` is one character, so no other table matches.
 */
const datedTableArns = (bases: string[]) =>
  bases.map((base) => `arn:aws:dynamodb:${Aws.REGION}:${Aws.ACCOUNT_ID}:table/????-??-??-${base}`);

/**
 * `keep_tables`: after a successful run the finalizer deletes the job's dated tables past the
 * limit (shared/src/sources/quicksight/retention.rs): it lists the tables, and deletes one only
 * after reading its tags.
 */
function quickSightRetention(job: Job): PolicyStatement[] {
  const spec = quickSightOf(job);
  if (!job.keep_tables || !spec.users) return [];
  return [
    // ListTables has no resource-level permissions.
    new PolicyStatement({ actions: ['dynamodb:ListTables'], resources: ['*'] }),
    new PolicyStatement({
      actions: ['dynamodb:DescribeTable', 'dynamodb:ListTagsOfResource', 'dynamodb:DeleteTable'],
      resources: datedTableArns(spec.tables),
    }),
  ];
}

export type Role = 'planner' | 'worker' | 'finalizer';

/** What one function needs for one job. */
export function statementsFor(job: Job, role: Role): PolicyStatement[] {
  const control = controlOf(job);
  const statements: PolicyStatement[] = [
    // Claim-checks (planner), outcomes (worker), manifests, reports and state (finalizer).
    new PolicyStatement({
      sid: undefined,
      actions: ['s3:GetObject', 's3:PutObject'],
      resources: [objectsArn(control.bucket, control.prefix)],
    }),
    new PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucketArn(control.bucket)] }),
  ];
  // [jobs.notify] webhooks: the planner reports a run that failed to plan, the finalizer a run
  // that failed (shared/src/pipeline/{planner,finalizer}.rs).
  // Sentry's DSN the same; Zabbix needs no IAM, and `vault:` references sign in to Vault (its
  // AWS IAM method calls sts:GetCallerIdentity, which needs no permission).
  if (role !== 'worker') {
    const notify = job.notify;
    statements.push(
      ...secretStatements([notify?.teams_webhook, notify?.slack_webhook, notify?.webhook, notify?.sentry_dsn]),
    );
  }
  if (role === 'finalizer') {
    if (job.kind === 'quicksight') statements.push(...quickSightRetention(job));
    return statements;
  }

  if (job.kind === 'filesystem') {
    // One bucket per folder, named {bucket_prefix}-{slug}: known by prefix only. The planner
    // creates and configures them (and the control bucket {bucket_prefix}-backline).
    const buckets = `arn:aws:s3:::${job.target!.bucket_prefix}-*`;
    if (role === 'planner') {
      statements.push(
        new PolicyStatement({
          actions: [
            's3:CreateBucket',
            's3:ListBucket',
            's3:GetBucketVersioning',
            's3:PutBucketVersioning',
            's3:GetLifecycleConfiguration',
            's3:PutLifecycleConfiguration',
            's3:GetBucketPublicAccessBlock',
            's3:PutBucketPublicAccessBlock',
            's3:GetEncryptionConfiguration',
            's3:PutEncryptionConfiguration',
          ],
          resources: [buckets],
        }),
        new PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [`${buckets}/_backline/*`] }),
      );
    } else {
      statements.push(
        new PolicyStatement({
          actions: ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
          resources: [`${buckets}/*`],
        }),
      );
    }
    return statements;
  }
  if (job.kind === 'filesystem-restore') {
    // Reads the backup's buckets ({bucket_prefix}-*), retrieves archived files, and writes the
    // files to the worker's file system (EFS), which needs no IAM.
    const buckets = `arn:aws:s3:::${job.backup!.target!.bucket_prefix}-*`;
    statements.push(new PolicyStatement({ actions: ['s3:ListBucket', 's3:ListBucketVersions'], resources: [buckets] }));
    if (role === 'worker') {
      statements.push(
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:RestoreObject'],
          resources: [`${buckets}/*`],
        }),
      );
    }
    return statements;
  }
  if (job.kind === 's3') {
    const source = job.source!.bucket!;
    const target = job.target!.bucket!;
    // Planner: list the source, check both buckets exist. Worker: read the source, write the target.
    statements.push(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucketArn(source), bucketArn(target)] }));
    if (role === 'worker') {
      statements.push(
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectTagging'],
          resources: [objectsArn(source, job.source!.prefix ?? '')],
        }),
        new PolicyStatement({
          actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:GetObjectTagging', 's3:AbortMultipartUpload'],
          resources: [objectsArn(target, job.target!.prefix ?? '')],
        }),
      );
    }
  } else if (job.kind === 'tableau-restore') {
    // Publishes workbooks back to the Tableau server (HTTPS, no IAM) from the backup's buckets:
    // the planner finds each run's object versions, the worker reads them and signs in.
    const backup = job.backup!;
    const buckets = [
      ...(backup.target?.bucket ? [{ bucket: backup.target.bucket, prefix: backup.target.prefix ?? '' }] : []),
      ...(backup.projects ?? []).map((p) => ({ bucket: p.bucket, prefix: p.prefix ?? '' })),
    ];
    if (role === 'planner') {
      statements.push(
        new PolicyStatement({
          actions: ['s3:ListBucket', 's3:ListBucketVersions'],
          resources: unique(buckets.map((b) => bucketArn(b.bucket))),
        }),
      );
    } else {
      statements.push(
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: unique(buckets.map((b) => objectsArn(b.bucket, b.prefix))),
        }),
        ...secretStatements([backup.source?.token_secret, backup.source?.password]),
      );
    }
  } else if (job.kind === 's3-restore') {
    const backup = job.backup!.target!.bucket!;
    const to = job.options!.to_bucket!;
    statements.push(
      new PolicyStatement({ actions: ['s3:ListBucket', 's3:ListBucketVersions'], resources: [bucketArn(backup)] }),
      // The planner creates the restore bucket; the worker lists it so a missing object reads as
      // 404, not 403, when it checks what is already restored.
      new PolicyStatement({
        actions: role === 'planner' ? ['s3:ListBucket', 's3:CreateBucket'] : ['s3:ListBucket'],
        resources: [bucketArn(to)],
      }),
    );
    if (role === 'worker') {
      statements.push(
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion', 's3:GetObjectTagging', 's3:GetObjectVersionTagging', 's3:RestoreObject'],
          resources: [objectsArn(backup, job.backup!.target!.prefix ?? '')],
        }),
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging', 's3:AbortMultipartUpload'],
          resources: [objectsArn(to)],
        }),
      );
    }
  } else if (job.kind === 'tableau') {
    // Workbooks come from the Tableau server over HTTPS (no IAM). They go to the default target
    // bucket, or to a project's own bucket ([[jobs.projects]]), each under its prefix.
    // Without a target, only the projects are backed up.
    const targets = [
      ...(job.target?.bucket ? [{ bucket: job.target.bucket, prefix: job.target.prefix ?? '' }] : []),
      ...(job.projects ?? []).map((p) => ({ bucket: p.bucket, prefix: p.prefix ?? '' })),
    ];
    if (role === 'planner') {
      // Checks each target bucket exists (HeadBucket is s3:ListBucket) and turns its versioning on.
      statements.push(
        new PolicyStatement({
          actions: ['s3:ListBucket', 's3:GetBucketVersioning', 's3:PutBucketVersioning'],
          resources: unique(targets.map((t) => bucketArn(t.bucket))),
        }),
      );
    } else {
      // Uploads (multipart for large workbooks) with tags; refreshes an unchanged workbook by
      // copying its object onto itself (GetObject, GetObjectTagging on the source of the copy).
      statements.push(
        new PolicyStatement({
          actions: [
            's3:PutObject',
            's3:PutObjectTagging',
            's3:GetObject',
            's3:GetObjectTagging',
            's3:AbortMultipartUpload',
            's3:ListMultipartUploadParts',
          ],
          resources: unique(targets.map((t) => objectsArn(t.bucket, t.prefix))),
        }),
      );
    }
    // Both sign in to the server: the planner to list sites and workbooks, the worker to download.
    statements.push(...secretStatements([job.source?.token_secret, job.source?.password]));
  } else if (job.kind === 'quicksight') {
    // Users, groups and memberships are read in the identity region into the day's tables
    // (mode full or users-only); assets are listed in `region` and exported as bundles into the
    // target bucket (full or assets-only). The planner makes the tables, the workers fill them.
    const spec = quickSightOf(job);
    const identity = quickSightArn(spec.identityRegion, spec.account);
    const assets = quickSightArn(spec.region, spec.account);
    if (role === 'planner') {
      // Checks the target bucket exists (HeadBucket is s3:ListBucket) whatever the mode.
      statements.push(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucketArn(spec.bucket)] }));
      if (spec.users) {
        statements.push(
          new PolicyStatement({
            actions: ['quicksight:ListUsers', 'quicksight:ListGroups', 'quicksight:ListGroupMemberships'],
            resources: [identity],
          }),
          // Makes each of the day's tables unless it exists (tagged with the job, so retention
          // deletes only its own), and waits until it is ACTIVE; a dry run only describes them.
          new PolicyStatement({
            actions: ['dynamodb:CreateTable', 'dynamodb:DescribeTable', 'dynamodb:TagResource'],
            resources: datedTableArns(spec.tables),
          }),
        );
      }
      if (spec.assets) {
        statements.push(
          new PolicyStatement({ actions: ['quicksight:ListAnalyses', 'quicksight:ListDashboards'], resources: [assets] }),
          quickSightUnscoped(['quicksight:ListDataSources', 'quicksight:ListDataSets'], spec.region),
        );
      }
    } else {
      if (spec.users) {
        statements.push(
          new PolicyStatement({ actions: ['dynamodb:BatchWriteItem'], resources: datedTableArns(spec.tables) }),
        );
      }
      if (spec.assets) {
        statements.push(
          // An export job reads every asset it bundles with the caller's permissions: the
          // definitions (DescribeAnalysisDefinition and DescribeDashboardDefinition are
          // authorized as DescribeAnalysis and DescribeDashboard), permissions, tags, refresh
          // properties, and what the assets use (themes, VPC connections).
          new PolicyStatement({
            actions: [
              'quicksight:StartAssetBundleExportJob',
              'quicksight:DescribeAssetBundleExportJob',
              'quicksight:DescribeDataSource',
              'quicksight:DescribeDataSourcePermissions',
              'quicksight:DescribeDataSet',
              'quicksight:DescribeDataSetPermissions',
              'quicksight:DescribeDataSetRefreshProperties',
              'quicksight:DescribeAnalysis',
              'quicksight:DescribeAnalysisPermissions',
              'quicksight:DescribeDashboard',
              'quicksight:DescribeDashboardPermissions',
              'quicksight:DescribeTheme',
              'quicksight:DescribeThemePermissions',
              'quicksight:DescribeVPCConnection',
              'quicksight:ListTagsForResource',
            ],
            resources: [assets],
          }),
          quickSightUnscoped(['quicksight:ListRefreshSchedules'], spec.region),
          // Streams each finished bundle from its download URL into the bucket (multipart).
          new PolicyStatement({
            actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
            resources: [objectsArn(spec.bucket, spec.prefix)],
          }),
        );
      }
    }
  } else if (job.kind === 'quicksight-restore') {
    // A day of a quicksight backup, into `to_account` (default: the backup's) and `to_region`
    // (default: the backup's region): the planner scans the day's tables (and reads the backup
    // run's manifest in the control location); the worker creates groups, users and memberships
    // in the identity region and imports the bundles in the asset region.
    const backup = quickSightOf(job.backup!);
    const options = job.options ?? {};
    const [users, assets] = options.users || options.assets ? [!!options.users, !!options.assets] : [true, true];
    const account = options.to_account ?? backup.account;
    const region = options.to_region ?? backup.region;
    const identityRegion =
      options.to_identity_region ?? (options.to_account && options.to_region ? options.to_region : backup.identityRegion);
    if (role === 'planner') {
      if (users) {
        statements.push(new PolicyStatement({ actions: ['dynamodb:Scan'], resources: datedTableArns(backup.tables) }));
      }
    } else {
      if (users) {
        statements.push(
          new PolicyStatement({
            actions: [
              'quicksight:CreateGroup',
              'quicksight:DescribeUser',
              'quicksight:RegisterUser',
              'quicksight:CreateGroupMembership',
            ],
            resources: [quickSightArn(identityRegion, account)],
          }),
        );
      }
      if (assets) {
        statements.push(
          // An import job creates or updates each asset of the bundle, with its permissions,
          // tags and refresh schedules, with the caller's permissions.
          new PolicyStatement({
            actions: [
              'quicksight:StartAssetBundleImportJob',
              'quicksight:DescribeAssetBundleImportJob',
              'quicksight:UpdateDataSource',
              'quicksight:UpdateDataSourcePermissions',
              'quicksight:PassDataSource',
              'quicksight:CreateDataSet',
              'quicksight:UpdateDataSet',
              'quicksight:UpdateDataSetPermissions',
              'quicksight:PassDataSet',
              'quicksight:CreateRefreshSchedule',
              'quicksight:UpdateRefreshSchedule',
              'quicksight:CreateAnalysis',
              'quicksight:UpdateAnalysis',
              'quicksight:UpdateAnalysisPermissions',
              'quicksight:CreateDashboard',
              'quicksight:UpdateDashboard',
              'quicksight:UpdateDashboardPermissions',
              'quicksight:UpdateDashboardPublishedVersion',
              'quicksight:DescribeDataSource',
              'quicksight:DescribeDataSet',
              'quicksight:DescribeAnalysis',
              'quicksight:DescribeDashboard',
              'quicksight:TagResource',
            ],
            resources: [quickSightArn(region, account)],
          }),
          quickSightUnscoped(['quicksight:CreateDataSource', 'quicksight:CreateVPCConnection'], region),
          // QuickSight reads each bundle from its S3 URI with the caller's access.
          new PolicyStatement({ actions: ['s3:GetObject'], resources: [objectsArn(backup.bucket, backup.prefix)] }),
        );
      }
    }
  } else {
    throw new Error(`job ${job.name}: kind ${job.kind} has no permissions defined in infra/lib/permissions.ts`);
  }
  if (role === 'worker' && job.target?.kms_key_id) {
    const key = job.target.kms_key_id;
    statements.push(
      new PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [key.startsWith('arn:') ? key : `arn:aws:kms:*:*:${key.startsWith('alias/') ? key : `key/${key}`}`],
      }),
    );
  }
  return statements;
}

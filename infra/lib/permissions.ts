// Least privilege per job kind: sources are read-only, targets writable, control locations
// read-write under their prefix. Every statement names its buckets; no resource is `*` except
// where the API has no resource-level permissions (documented at the statement).
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { controlOf, type Job } from './deployment.ts';

const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
const objectsArn = (bucket: string, prefix = '') => `arn:aws:s3:::${bucket}/${prefix}*`;

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
  if (role === 'finalizer') return statements;

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
    const buckets = `arn:aws:s3:::${job.backup!.target.bucket_prefix}-*`;
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
    const source = job.source!.bucket;
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
  } else if (job.kind === 's3-restore') {
    const backup = job.backup!.target.bucket!;
    const to = job.options!.to_bucket;
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
          resources: [objectsArn(backup, job.backup!.target.prefix ?? '')],
        }),
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject', 's3:PutObjectTagging', 's3:AbortMultipartUpload'],
          resources: [objectsArn(to)],
        }),
      );
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

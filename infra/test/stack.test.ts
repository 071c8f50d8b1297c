// CDK assertions on the Backline stack synthesized from the example deployment config, and
// cdk-nag's AwsSolutions pack with no unsuppressed finding.
import { App, Aspects } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { controlOf, type Deployment, type Job, loadDeployment, quickSightOf } from '../lib/deployment.ts';
import { type Role, statementsFor } from '../lib/permissions.ts';
import { EVENT_SOURCES, mapping } from '../lib/event-sources.ts';
import { BacklineStack, CONTEXT, scheduleInput } from '../lib/stack.ts';

const example = loadDeployment(resolve(import.meta.dirname, '../backline.example.toml'));

function synth(deployment: Deployment = example) {
  const app = new App({ context: { ...CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const stack = new BacklineStack(app, 'Test', { deployment, env: { account: '123456789012', region: 'eu-west-1' } });
  Aspects.of(app).add(new AwsSolutionsChecks());
  app.synth();
  return { stack, template: Template.fromStack(stack) };
}

const { stack, template } = synth();
type Resource = { Properties: Record<string, any> };
const resources = (type: string) => Object.entries(template.findResources(type)) as [string, Resource][];

describe('queues', () => {
  const queues = resources('AWS::SQS::Queue');
  const workers = resources('AWS::Lambda::Function').filter(([, r]) => r.Properties.Description === 'Backline worker');

  it('are four: work and finalize, each with a dead-letter queue', () => assert.equal(queues.length, 4));

  it('are encrypted and refuse plain HTTP', () => {
    for (const [, q] of queues) assert.equal(q.Properties.SqsManagedSseEnabled, true);
    template.resourceCountIs('AWS::SQS::QueuePolicy', 4);
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('redrive to their DLQ after five receives; DLQs keep messages two weeks', () => {
    const mains = queues.filter(([, q]) => q.Properties.RedrivePolicy);
    assert.equal(mains.length, 2);
    assert.equal(EVENT_SOURCES.max_receive_count, 5);
    for (const [, q] of mains) assert.equal(q.Properties.RedrivePolicy.maxReceiveCount, EVENT_SOURCES.max_receive_count);
    const dlqs = queues.filter(([, q]) => !q.Properties.RedrivePolicy);
    for (const [, q] of dlqs) assert.equal(q.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
  });

  it('are named as infra/event-sources.json names them, which the local pump also reads', () => {
    const names = queues.map(([, q]) => q.Properties.QueueName).sort();
    assert.deepEqual(names, ['backline-finalize', 'backline-finalize-dlq', 'backline-work', 'backline-work-dlq']);
  });

  it('hide a message at least six times as long as its consumer runs', () => {
    assert.equal(workers.length, 1);
    const timeout = workers[0][1].Properties.Timeout;
    const visibilities = queues.map(([, q]) => q.Properties.VisibilityTimeout).filter(Boolean);
    assert.ok(visibilities.includes(6 * timeout), `${visibilities} vs worker timeout ${timeout}`);
    for (const v of visibilities) assert.ok(v >= 6 * 300);
  });

  it('feed the functions with partial batch failures and bounded concurrency', () => {
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: mapping('work').batch_size,
      ScalingConfig: { MaximumConcurrency: example.infra.worker_max_concurrency },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: mapping('finalize').batch_size,
      ScalingConfig: { MaximumConcurrency: mapping('finalize').max_concurrency },
    });
  });
});

describe('ledger', () => {
  it('is on demand, recoverable to a point in time, with a TTL', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    });
  });
});

describe('buckets the stack creates', () => {
  const data = resources('AWS::S3::Bucket').filter(([, b]) => example.infra.create_buckets.includes(b.Properties.BucketName));

  it('are the ones the config lists', () => assert.equal(data.length, example.infra.create_buckets.length));

  it('are versioned, private, encrypted and logged', () => {
    for (const [, b] of data) {
      assert.equal(b.Properties.VersioningConfiguration.Status, 'Enabled');
      assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      assert.ok(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration.length);
      assert.ok(b.Properties.LoggingConfiguration.DestinationBucketName);
    }
  });

  it('expire old versions, and objects tagged Deleted=True when asked', () => {
    for (const [, b] of data) {
      const rules = b.Properties.LifecycleConfiguration.Rules;
      const versions = rules.find((r: any) => r.Id === 'expire-old-versions');
      assert.equal(versions.NoncurrentVersionExpiration.NoncurrentDays, example.infra.noncurrent_expiry_days);
      const deleted = rules.find((r: any) => r.Id === 'expire-deleted-at-source');
      assert.deepEqual(deleted.TagFilters, [{ Key: 'Deleted', Value: 'True' }]);
      assert.equal(deleted.ExpirationInDays, example.infra.deleted_expiry_days);
    }
  });

  it('refuse requests without TLS', () => {
    const policies = resources('AWS::S3::BucketPolicy');
    assert.ok(policies.length >= data.length);
    for (const [, p] of policies) {
      const deny = p.Properties.PolicyDocument.Statement.find((s: any) => s.Effect === 'Deny');
      assert.deepEqual(deny.Condition, { Bool: { 'aws:SecureTransport': 'false' } });
    }
  });
});

/** A statement's resources as text, pseudo parameters as ${AWS::Region} and ${AWS::AccountId}. */
const arns = (statement: any): string[] =>
  [statement.Resource].flat().map((r: any) =>
    typeof r === 'string'
      ? r
      : (r['Fn::Join'][1] as any[]).map((part) => (typeof part === 'string' ? part : `\${${part.Ref}}`)).join(''),
  );
const WRITES = /Put|Delete|Restore|Abort|Create/;

/** The statements a function's role has, and the resources it has for an action. */
const statements = (role: Role) =>
  stack.resolve((stack.functions[role].role!.node.tryFindChild('DefaultPolicy') as any).document).Statement as any[];
const grants = (role: Role, action: string) =>
  statements(role).filter((s) => [s.Action].flat().includes(action)).flatMap(arns);
// A job's own statements, resolved in the stack as the functions get them.
const own = (job: Job, role: Role) => statementsFor(job, role).map((s) => stack.resolve(s.toStatementJson())) as any[];
const writes = (job: Job, role: Role) =>
  own(job, role).filter((s) => [s.Action].flat().some((a: string) => WRITES.test(a))).flatMap(arns);
/** QuickSight actions without resource-level permissions: on `*`, pinned to a region. */
const QUICKSIGHT_UNSCOPED = new Set([
  'quicksight:ListDataSources',
  'quicksight:ListDataSets',
  'quicksight:ListRefreshSchedules',
  'quicksight:CreateDataSource',
  'quicksight:CreateVPCConnection',
]);

describe('functions', () => {
  const functions = resources('AWS::Lambda::Function');

  it('are the three, on arm64 and provided.al2023, configured by environment', () => {
    assert.equal(functions.length, 3);
    for (const [, f] of functions) {
      assert.deepEqual(f.Properties.Architectures, ['arm64']);
      assert.equal(f.Properties.Runtime, 'provided.al2023');
      assert.deepEqual(
        Object.keys(f.Properties.Environment.Variables).sort(),
        ['BACKLINE_FINALIZE_QUEUE_URL', 'BACKLINE_LEDGER_TABLE', 'BACKLINE_WORK_QUEUE_URL', 'RUST_LOG'],
      );
    }
  });

  it('log JSON lines, so EMF metric lines become metrics', () => {
    for (const [, f] of functions) assert.equal(f.Properties.LoggingConfig?.LogFormat, 'JSON');
  });

  it('name every resource they may touch, except what has no resource-level permissions', () => {
    for (const [id, policy] of resources('AWS::IAM::Policy')) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        const actions = [statement.Action].flat();
        const wildcard = [statement.Resource].flat().includes('*');
        if (wildcard) {
          const pinned = (a: string) =>
            (a === 'cloudwatch:PutMetricData' && statement.Condition?.StringEquals?.['cloudwatch:namespace']) ||
            (a === 'elasticfilesystem:ClientMount' && statement.Condition?.StringEquals?.['elasticfilesystem:AccessPointArn']) ||
            (QUICKSIGHT_UNSCOPED.has(a) && statement.Condition?.StringEquals?.['aws:RequestedRegion']) ||
            a === 'dynamodb:ListTables' ||
            a.startsWith('xray:');
          assert.ok(actions.every(pinned), `${id}: * for ${actions}`);
        }
      }
    }
  });

  it('only read sources: nothing writes to photos-prod', () => {
    for (const [id, policy] of resources('AWS::IAM::Policy')) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        const onSource = JSON.stringify(statement.Resource).includes('photos-prod');
        const writes = [statement.Action].flat().some((a: string) => /Put|Delete|Restore|Abort/.test(a));
        assert.ok(!(onSource && writes), `${id} writes to the source: ${JSON.stringify(statement)}`);
      }
    }
  });

  it("lets filesystem jobs write only their own prefix's buckets, and only the planner create buckets", () => {
    assert.deepEqual(grants('worker', 's3:DeleteObject'), ['arn:aws:s3:::matricula-*/*']);
    assert.ok(grants('planner', 's3:PutLifecycleConfiguration').includes('arn:aws:s3:::matricula-*'));
    assert.deepEqual(grants('worker', 's3:CreateBucket'), []);
  });

  it('let the planner and the finalizer, not the worker, read the webhooks they notify', () => {
    const webhook = 'arn:aws:ssm:${AWS::Region}:${AWS::AccountId}:parameter/backline/teams-webhook';
    assert.ok(grants('planner', 'ssm:GetParameter').includes(webhook));
    assert.ok(grants('finalizer', 'ssm:GetParameter').includes(webhook));
    assert.ok(!grants('worker', 'ssm:GetParameter').includes(webhook));
  });

  it("read the [notify] defaults' Slack webhook and Sentry DSN for every job", () => {
    const slack = 'arn:aws:ssm:${AWS::Region}:${AWS::AccountId}:parameter/backline/slack-webhook';
    const sentry = 'arn:aws:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:backline/sentry-dsn-??????';
    assert.ok(example.jobs.every((j) => j.notify?.slack_webhook === 'ssm:/backline/slack-webhook'));
    assert.ok(grants('finalizer', 'ssm:GetParameter').includes(slack));
    assert.ok(grants('planner', 'secretsmanager:GetSecretValue').includes(sentry));
    assert.ok(!grants('worker', 'secretsmanager:GetSecretValue').includes(sentry));
  });

  it('lets the worker restore archived objects from the backup and write the restore bucket', () => {
    const worker = stack.functions.worker.role!.node.tryFindChild('DefaultPolicy')!;
    const statements = JSON.stringify(stack.resolve((worker as any).document));
    assert.match(statements, /s3:RestoreObject/);
    assert.match(statements, /arn:aws:s3:::photos-drill\/\*/);
  });
});

describe('a tableau job', () => {
  const tableau = example.jobs.find((j) => j.kind === 'tableau')!;
  const ssm = (name: string) => `arn:aws:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name}`;

  it('is in the example, with a project bucket and its token in SSM', () => {
    assert.ok(tableau?.schedule);
    assert.ok(tableau.projects?.length);
    assert.ok(tableau.source?.token_secret?.startsWith('ssm:'));
    assert.deepEqual(controlOf(tableau), { bucket: 'tableau-backup', prefix: '_backline/' });
  });

  it('lets the worker write the default and the project buckets under their prefixes, and nothing else', () => {
    const expected = ['arn:aws:s3:::tableau-backup/*', 'arn:aws:s3:::finance-reports-backup/workbooks/*'];
    assert.deepEqual([...new Set(writes(tableau, 'worker'))].sort(), [...expected, 'arn:aws:s3:::tableau-backup/_backline/*'].sort());
    const worker = own(tableau, 'worker');
    const upload = worker.find((s) => [s.Action].flat().includes('s3:ListMultipartUploadParts'));
    assert.deepEqual(arns(upload).sort(), expected.sort());
    for (const action of ['s3:GetObject', 's3:PutObjectTagging', 's3:GetObjectTagging', 's3:AbortMultipartUpload']) {
      assert.ok([upload.Action].flat().includes(action), action);
    }
    const buckets = new Set(worker.flatMap(arns).filter((a) => a.startsWith('arn:aws:s3:::')).map((a) => a.slice(13).split('/')[0]));
    assert.deepEqual([...buckets].sort(), ['finance-reports-backup', 'tableau-backup']);
    for (const arn of expected) assert.ok(grants('worker', 's3:PutObject').includes(arn), `worker may write ${arn}`);
  });

  it('lets the planner check the buckets, turn their versioning on, and read the token', () => {
    // Without the file's [notify] defaults, whose secrets every job reads.
    const planner = own({ ...tableau, notify: undefined }, 'planner');
    const versioning = planner.filter((s) => [s.Action].flat().includes('s3:PutBucketVersioning')).flatMap(arns);
    assert.deepEqual(versioning.sort(), ['arn:aws:s3:::finance-reports-backup', 'arn:aws:s3:::tableau-backup']);
    assert.ok(!planner.some((s) => [s.Action].flat().includes('s3:PutObject') && arns(s).some((a) => !a.includes('/_backline/'))));
    const token = ssm('/backline/tableau-token');
    assert.deepEqual(planner.filter((s) => [s.Action].flat().includes('ssm:GetParameter')).flatMap(arns), [token]);
    assert.ok(grants('planner', 'ssm:GetParameter').includes(token), 'the planner reads the token');
    assert.ok(grants('worker', 'ssm:GetParameter').includes(token), 'the worker reads the token');
    assert.ok(!grants('finalizer', 'ssm:GetParameter').includes(token), 'the finalizer does not');
  });

  it('lets a restore drill read the backup and the token, and write no bucket but its control location', () => {
    const drill = example.jobs.find((j) => j.kind === 'tableau-restore')!;
    assert.ok(drill?.schedule);
    assert.deepEqual(controlOf(drill), { bucket: 'tableau-backup', prefix: '_backline/' });
    const reads = own(drill, 'worker').filter((s) => [s.Action].flat().includes('s3:GetObjectVersion')).flatMap(arns);
    assert.deepEqual(reads.sort(), ['arn:aws:s3:::finance-reports-backup/workbooks/*', 'arn:aws:s3:::tableau-backup/*']);
    const versions = own(drill, 'planner').filter((s) => [s.Action].flat().includes('s3:ListBucketVersions')).flatMap(arns);
    assert.deepEqual(versions.sort(), ['arn:aws:s3:::finance-reports-backup', 'arn:aws:s3:::tableau-backup']);
    for (const role of ['planner', 'worker', 'finalizer'] as Role[]) {
      assert.deepEqual(writes(drill, role), ['arn:aws:s3:::tableau-backup/_backline/*'], role);
    }
    const token = ssm('/backline/tableau-token');
    assert.ok(own(drill, 'worker').some((s) => [s.Action].flat().includes('ssm:GetParameter') && arns(s).includes(token)));
  });

  it('gives the finalizer no bucket write beyond the control locations', () => {
    assert.deepEqual(writes(tableau, 'finalizer'), ['arn:aws:s3:::tableau-backup/_backline/*']);
    const controls = new Set(example.jobs.map((j) => `arn:aws:s3:::${controlOf(j).bucket}/${controlOf(j).prefix}*`));
    const finalizerWrites = statements('finalizer')
      .filter((s) => [s.Action].flat().some((a: string) => a.startsWith('s3:') && WRITES.test(a)))
      .flatMap(arns);
    assert.ok(finalizerWrites.length);
    for (const arn of finalizerWrites) assert.ok(controls.has(arn), `finalizer writes ${arn}`);
  });

  it('reads a password or a Secrets Manager secret the same way, and env: needs nothing', () => {
    const job: Job = {
      ...tableau,
      notify: undefined,
      source: { server: 'https://t.example.com', username: 'u', password: 'secretsmanager:backline/tableau' },
    };
    for (const role of ['planner', 'worker'] as Role[]) {
      const read = own(job, role).filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'));
      assert.deepEqual(read.flatMap(arns), [
        'arn:aws:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:backline/tableau-??????',
      ]);
    }
    const envOnly: Job = {
      ...tableau,
      notify: undefined,
      source: { server: 'https://t.example.com', token_name: 'n', token_secret: 'env:T' },
    };
    assert.ok(!own(envOnly, 'planner').some((s) => /^(ssm|secretsmanager):/.test([s.Action].flat()[0])));
    const versioned: Job = { ...tableau, source: { ...tableau.source, token_secret: 'ssm:backline-token:3' } };
    assert.deepEqual(own(versioned, 'worker').filter((s) => s.Action === 'ssm:GetParameter').flatMap(arns), [ssm('/backline-token')]);
  });
});

describe('a quicksight job', () => {
  const prod = example.jobs.find((j) => j.name === 'quicksight-prod')!;
  const drill = example.jobs.find((j) => j.name === 'quicksight-drill')!;
  const actions = (s: any): string[] => [s.Action].flat();
  /** The resources a job's role has for `action`. */
  const on = (job: Job, role: Role, action: string) => own(job, role).filter((s) => actions(s).includes(action)).flatMap(arns);
  const withPrefix = (prefix: string) => (a: string) => actions({ Action: a }).some((x) => x.startsWith(prefix));
  const of = (job: Job, role: Role, service: string) => own(job, role).filter((s) => actions(s).some(withPrefix(service)));
  const tables = ['quicksight-users-backup', 'quicksight-groups-backup', 'quicksight-users-groups-backup'].map(
    (base) => `arn:aws:dynamodb:\${AWS::Region}:\${AWS::AccountId}:table/????-??-??-${base}`,
  );
  const ROLES: Role[] = ['planner', 'worker', 'finalizer'];
  const s3Writes = (job: Job, role: Role) =>
    own(job, role)
      .filter((s) => actions(s).some((a) => a.startsWith('s3:') && WRITES.test(a)))
      .flatMap(arns)
      .sort();
  const control = 'arn:aws:s3:::quicksight-backup/_backline/*';
  const bundles = 'arn:aws:s3:::quicksight-backup/quicksight-backups/*';

  it('is in the example: assets in eu-west-1, users in us-east-1, tables kept 90 days, and a drill', () => {
    assert.ok(prod.schedule && drill.schedule);
    assert.equal(prod.keep_tables, '90d');
    assert.equal(drill.backup_job, 'quicksight-prod');
    assert.deepEqual(controlOf(prod), { bucket: 'quicksight-backup', prefix: '_backline/' });
    assert.deepEqual(controlOf(drill), { bucket: 'quicksight-backup', prefix: '_backline/' });
    assert.deepEqual(quickSightOf(prod), {
      account: '123456789012',
      region: 'eu-west-1',
      identityRegion: 'us-east-1',
      bucket: 'quicksight-backup',
      prefix: 'quicksight-backups/',
      tables: ['quicksight-users-backup', 'quicksight-groups-backup', 'quicksight-users-groups-backup'],
      users: true,
      assets: true,
    });
  });

  it('lets the planner list users in us-east-1 and assets in eu-west-1, of account 123456789012 only', () => {
    for (const action of ['quicksight:ListUsers', 'quicksight:ListGroups', 'quicksight:ListGroupMemberships']) {
      assert.deepEqual(on(prod, 'planner', action), ['arn:aws:quicksight:us-east-1:123456789012:*'], action);
    }
    for (const action of ['quicksight:ListAnalyses', 'quicksight:ListDashboards']) {
      assert.deepEqual(on(prod, 'planner', action), ['arn:aws:quicksight:eu-west-1:123456789012:*'], action);
    }
    // No resource-level permissions: *, but only in eu-west-1.
    const unscoped = own(prod, 'planner').filter((s) => actions(s).includes('quicksight:ListDataSets'));
    assert.deepEqual(unscoped, [
      {
        Action: ['quicksight:ListDataSources', 'quicksight:ListDataSets'],
        Effect: 'Allow',
        Resource: '*',
        Condition: { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } },
      },
    ]);
    assert.deepEqual(on(prod, 'planner', 's3:ListBucket').sort(), ['arn:aws:s3:::quicksight-backup', 'arn:aws:s3:::quicksight-backup']);
    assert.ok(grants('planner', 'quicksight:ListUsers').includes('arn:aws:quicksight:us-east-1:123456789012:*'));
  });

  it('lets the planner make and the worker fill only the three dated tables, never table/*', () => {
    for (const action of ['dynamodb:CreateTable', 'dynamodb:DescribeTable', 'dynamodb:TagResource']) {
      assert.deepEqual(on(prod, 'planner', action), tables, action);
    }
    assert.deepEqual(on(prod, 'worker', 'dynamodb:BatchWriteItem'), tables);
    assert.deepEqual(on(drill, 'planner', 'dynamodb:Scan'), tables);
    for (const job of [prod, drill]) {
      for (const role of ROLES) {
        for (const statement of of(job, role, 'dynamodb:')) {
          const expected = actions(statement).includes('dynamodb:ListTables') ? ['*'] : tables;
          assert.deepEqual(arns(statement), expected, `${job.name} ${role}: ${JSON.stringify(statement)}`);
        }
      }
    }
    for (const arn of tables) assert.ok(grants('planner', 'dynamodb:CreateTable').includes(arn), arn);
    for (const role of ROLES) assert.doesNotMatch(JSON.stringify(statements(role)), /:table\/\*/, role);
  });

  it('lets the worker write only under quicksight-backup/quicksight-backups/, and export from eu-west-1', () => {
    assert.deepEqual(s3Writes(prod, 'worker'), [control, bundles]);
    const upload = own(prod, 'worker').filter((s) => actions(s).includes('s3:ListMultipartUploadParts'));
    assert.deepEqual(upload.map((s) => [actions(s).sort(), arns(s)]), [
      [['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObject'], [bundles]],
    ]);
    for (const action of ['quicksight:StartAssetBundleExportJob', 'quicksight:DescribeDashboard', 'quicksight:DescribeDataSet']) {
      assert.deepEqual(on(prod, 'worker', action), ['arn:aws:quicksight:eu-west-1:123456789012:*'], action);
    }
    assert.deepEqual(on(prod, 'worker', 'quicksight:ListRefreshSchedules'), ['*']);
    assert.ok(grants('worker', 's3:PutObject').includes(bundles));
    // Nothing writes to the assets: the backup only reads QuickSight.
    const quicksight = of(prod, 'worker', 'quicksight:').concat(of(prod, 'planner', 'quicksight:')).flatMap(actions);
    assert.deepEqual(quicksight.filter((a) => /Create|Update|Delete|Register|Tag(?!s)/.test(a)), []);
  });

  it('puts bundles under the prefix as configured, or at the top of the bucket', () => {
    const at = (prefix: string) => s3Writes({ ...prod, target: { ...prod.target, prefix } }, 'worker');
    assert.deepEqual(at('qs/daily/'), [control, 'arn:aws:s3:::quicksight-backup/qs/daily/*']);
    assert.deepEqual(at('qs'), [control, 'arn:aws:s3:::quicksight-backup/qs/*']);
    assert.deepEqual(at(''), ['arn:aws:s3:::quicksight-backup/*', control]);
  });

  it('gives the finalizer DeleteTable on the three tables only because keep_tables is set', () => {
    assert.deepEqual(on(prod, 'finalizer', 'dynamodb:DeleteTable'), tables);
    assert.deepEqual(on(prod, 'finalizer', 'dynamodb:ListTagsOfResource'), tables);
    assert.deepEqual(on(prod, 'finalizer', 'dynamodb:ListTables'), ['*']);
    assert.deepEqual(grants('finalizer', 'dynamodb:DeleteTable'), tables);
    assert.deepEqual(s3Writes(prod, 'finalizer'), [control]);
    const { keep_tables: _keep, ...kept } = prod;
    assert.deepEqual(of(kept, 'finalizer', 'dynamodb:'), []);
    assert.equal(own(kept, 'finalizer').length, own(prod, 'finalizer').length - 2);
    // Retention runs only when users are backed up.
    assert.deepEqual(of({ ...prod, mode: 'assets-only' }, 'finalizer', 'dynamodb:'), []);
  });

  it('grants what a mode backs up and no more', () => {
    const usersOnly: Job = { ...prod, mode: 'users-only' };
    assert.deepEqual(s3Writes(usersOnly, 'worker'), [control]);
    assert.deepEqual(of(usersOnly, 'worker', 'quicksight:'), []);
    assert.deepEqual(on(usersOnly, 'planner', 'quicksight:ListDashboards'), []);
    assert.deepEqual(on(usersOnly, 'worker', 'dynamodb:BatchWriteItem'), tables);
    const assetsOnly: Job = { ...prod, mode: 'assets-only' };
    for (const role of ROLES) assert.deepEqual(of(assetsOnly, role, 'dynamodb:'), [], role);
    assert.deepEqual(on(assetsOnly, 'planner', 'quicksight:ListUsers'), []);
    assert.deepEqual(s3Writes(assetsOnly, 'worker'), [control, bundles]);
  });

  it('lets the drill create identities in us-east-1 and import into eu-west-1, in account 210987654321', () => {
    const identity = ['quicksight:CreateGroup', 'quicksight:DescribeUser', 'quicksight:RegisterUser', 'quicksight:CreateGroupMembership'];
    for (const action of identity) {
      assert.deepEqual(on(drill, 'worker', action), ['arn:aws:quicksight:us-east-1:210987654321:*'], action);
    }
    for (const action of ['quicksight:StartAssetBundleImportJob', 'quicksight:CreateDashboard', 'quicksight:PassDataSet']) {
      assert.deepEqual(on(drill, 'worker', action), ['arn:aws:quicksight:eu-west-1:210987654321:*'], action);
    }
    const unscoped = own(drill, 'worker').filter((s) => actions(s).includes('quicksight:CreateDataSource'));
    assert.deepEqual(unscoped.map((s) => [s.Resource, s.Condition]), [
      ['*', { StringEquals: { 'aws:RequestedRegion': 'eu-west-1' } }],
    ]);
    // The backed-up account is not touched; the bundles are read, and only under the prefix.
    assert.ok(!JSON.stringify(own(drill, 'worker')).includes('123456789012'));
    assert.deepEqual(on(drill, 'worker', 's3:GetObject').sort(), [control, bundles]);
    for (const role of ROLES) assert.deepEqual(s3Writes(drill, role), [control], role);
    assert.deepEqual(of(drill, 'planner', 'quicksight:'), []);
    assert.deepEqual(of(drill, 'worker', 'dynamodb:'), []);
    assert.deepEqual(of(drill, 'finalizer', 'dynamodb:').concat(of(drill, 'finalizer', 'quicksight:')), []);
  });

  it('follows the restore options: region, identity region, and what is restored', () => {
    const regions = (options: Job['options']) => {
      const job: Job = { ...drill, options };
      const first = (action: string) => on(job, 'worker', action)[0]?.split(':').slice(3, 5).join(':');
      return [first('quicksight:RegisterUser'), first('quicksight:StartAssetBundleImportJob')];
    };
    assert.deepEqual(regions({}), ['us-east-1:123456789012', 'eu-west-1:123456789012']);
    assert.deepEqual(regions({ to_region: 'eu-central-1' }), ['us-east-1:123456789012', 'eu-central-1:123456789012']);
    assert.deepEqual(regions({ to_account: '210987654321', to_region: 'eu-central-1' }), [
      'eu-central-1:210987654321',
      'eu-central-1:210987654321',
    ]);
    assert.deepEqual(regions({ to_account: '210987654321', to_region: 'eu-central-1', to_identity_region: 'us-west-2' }), [
      'us-west-2:210987654321',
      'eu-central-1:210987654321',
    ]);
    const usersOnly: Job = { ...drill, options: { ...drill.options, users: true } };
    assert.deepEqual(on(usersOnly, 'worker', 'quicksight:StartAssetBundleImportJob'), []);
    assert.deepEqual(on(usersOnly, 'worker', 's3:GetObject'), [control]);
    assert.deepEqual(on(usersOnly, 'planner', 'dynamodb:Scan'), tables);
    const assetsOnly: Job = { ...drill, options: { ...drill.options, assets: true } };
    assert.deepEqual(on(assetsOnly, 'planner', 'dynamodb:Scan'), []);
    assert.deepEqual(on(assetsOnly, 'worker', 'quicksight:RegisterUser'), []);
    assert.deepEqual(on(assetsOnly, 'worker', 's3:GetObject').sort(), [control, bundles]);
  });
});

describe('schedules', () => {
  const schedules = resources('AWS::Scheduler::Schedule');

  it('run each scheduled job with its planner request as input', () => {
    const scheduled = example.jobs.filter((j) => j.schedule);
    assert.equal(schedules.length, scheduled.length);
    for (const job of scheduled) {
      const [, schedule] = schedules.find(([, s]) => s.Properties.Name === `backline-${job.name}`)!;
      assert.equal(schedule.Properties.ScheduleExpression, job.schedule);
      const input = JSON.parse(schedule.Properties.Target.Input);
      assert.deepEqual(input, JSON.parse(JSON.stringify(scheduleInput(job))));
      assert.equal(input.job.name, job.name);
      assert.equal(input.time, '<aws.scheduler.scheduled-time>');
      assert.equal(input.job.schedule, undefined);
    }
  });
});

describe('alarms', () => {
  const alarms = resources('AWS::CloudWatch::Alarm');

  it('watch both DLQs, every function and every job, and page the SNS topic', () => {
    assert.equal(alarms.length, 2 + 3 + example.jobs.length);
    for (const [, a] of alarms) assert.equal(a.Properties.AlarmActions.length, 1);
    const failed = alarms.filter(([, a]) => a.Properties.MetricName === 'TasksFailed');
    assert.deepEqual(
      failed.map(([, a]) => a.Properties.Dimensions[0].Value).sort(),
      example.jobs.map((j) => j.name).sort(),
    );
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: example.infra.alarm_email });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('outputs', () => {
  it('name what an operator invokes and redrives', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    for (const name of ['PlannerFunctionName', 'WorkDlqArn', 'FinalizeDlqArn', 'LedgerTableName']) {
      assert.ok(outputs.includes(name), `${name} in ${outputs}`);
    }
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing that is not suppressed with a reason', () => {
    const findings = [
      ...Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    assert.deepEqual(findings.map((f) => `${f.id}: ${String(f.entry.data).split('\n')[0]}`), []);
  });
});

describe('an EFS mount for folders on EFS', () => {
  const efs = {
    file_system_id: 'fs-0123456789abcdef0',
    access_point_id: 'fsap-0123456789abcdef0',
    security_group_id: 'sg-0123456789abcdef0',
    vpc_id: 'vpc-0123456789abcdef0',
    subnet_ids: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    availability_zones: ['eu-west-1a', 'eu-west-1b'],
  };
  const { template: withEfs } = synth({ ...example, infra: { ...example.infra, efs } });

  it('is in the example, for the filesystem job', () => assert.ok(example.infra.efs));

  it('is mounted into the worker only, inside the VPC', () => {
    const mounted = Object.values(withEfs.findResources('AWS::Lambda::Function')).filter(
      (f: any) => f.Properties.FileSystemConfigs,
    ) as Resource[];
    assert.equal(mounted.length, 1);
    assert.equal(mounted[0].Properties.Description, 'Backline worker');
    assert.equal(mounted[0].Properties.FileSystemConfigs[0].LocalMountPath, '/mnt/backline');
    assert.deepEqual(mounted[0].Properties.VpcConfig.SubnetIds, efs.subnet_ids);
  });
});

// The Backline stack: work and finalize queues with DLQs, the DynamoDB ledger, the buckets the
// deployment creates, the three functions, one schedule per scheduled job, alarms and a dashboard.
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { resolve } from 'node:path';
import type { Deployment, Job } from './deployment.ts';
import { EVENT_SOURCES, type Mapping, mapping, maxConcurrency, queueName, timeoutSeconds } from './event-sources.ts';
import { type Role, statementsFor } from './permissions.ts';

/** What the worker needs to see an EFS file system. */
type Mount = Pick<lambda.FunctionProps, 'vpc' | 'vpcSubnets' | 'securityGroups' | 'filesystem'>;

export interface BacklineStackProps extends StackProps {
  deployment: Deployment;
  /** The workspace Cargo.toml the functions are built from. */
  manifestPath?: string;
}

const PLANNER_TIMEOUT = Duration.minutes(15);
/** CDK feature flags the app and its tests share. */
export const CONTEXT = {
  // Access logs are delivered under a bucket policy, not the legacy LogDeliveryWrite ACL.
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
};

export const METRICS = ['ObjectsToBackup', 'ObjectsCopied', 'BytesCopied', 'ObjectsTaggedDeleted', 'TasksFailed'];

export class BacklineStack extends Stack {
  readonly workQueue: sqs.Queue;
  readonly finalizeQueue: sqs.Queue;
  readonly ledger: dynamodb.Table;
  readonly functions: Record<Role, lambda.Function>;
  readonly alarmTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: BacklineStackProps) {
    super(scope, id, props);
    const { infra, jobs } = props.deployment;
    const key = infra.kms_key_arn ? kms.Key.fromKeyArn(this, 'Key', infra.kms_key_arn) : undefined;
    const workMapping = mapping('work');
    const finalizeMapping = mapping('finalize');
    const timeout = (m: Mapping) => Duration.seconds(timeoutSeconds(m, infra));

    // Queues as infra/event-sources.json sets them (names, visibility, redrive): encrypted,
    // TLS-only, each with a DLQ that keeps failures for two weeks.
    const queue = (name: string, m: Mapping) => {
      const queueNameOf = queueName(infra.stack_name, m);
      const dlq = new sqs.Queue(this, `${name}Dlq`, {
        queueName: `${queueNameOf}-dlq`,
        encryption: key ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
        encryptionMasterKey: key,
        enforceSSL: true,
        retentionPeriod: Duration.days(EVENT_SOURCES.dlq_retention_days),
      });
      NagSuppressions.addResourceSuppressions(dlq, [
        { id: 'AwsSolutions-SQS3', reason: 'This queue is the dead-letter queue; it has none of its own.' },
      ]);
      const main = new sqs.Queue(this, `${name}Queue`, {
        queueName: queueNameOf,
        encryption: key ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
        encryptionMasterKey: key,
        enforceSSL: true,
        visibilityTimeout: Duration.seconds(timeout(m).toSeconds() * EVENT_SOURCES.visibility_factor),
        retentionPeriod: Duration.days(EVENT_SOURCES.retention_days),
        deadLetterQueue: { queue: dlq, maxReceiveCount: EVENT_SOURCES.max_receive_count },
      });
      return { main, dlq };
    };
    const work = queue('Work', workMapping);
    const finalize = queue('Finalize', finalizeMapping);
    this.workQueue = work.main;
    this.finalizeQueue = finalize.main;

    this.ledger = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expires_at',
      encryption: key ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
      encryptionKey: key,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.createBuckets(props.deployment, key);

    // The three functions, built from the workspace by cargo-lambda.
    const manifestPath = props.manifestPath ?? resolve(import.meta.dirname, '../../Cargo.toml');
    const architecture = infra.architecture === 'x86_64' ? lambda.Architecture.X86_64 : lambda.Architecture.ARM_64;
    const environment = {
      BACKLINE_WORK_QUEUE_URL: work.main.queueUrl,
      BACKLINE_FINALIZE_QUEUE_URL: finalize.main.queueUrl,
      BACKLINE_LEDGER_TABLE: this.ledger.tableName,
      RUST_LOG: 'info',
    };
    const fn = (role: Role, timeout: Duration, memorySize: number, extra: Mount = {}) => {
      const name = role[0].toUpperCase() + role.slice(1);
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        retention: logs.RetentionDays.THREE_MONTHS,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      return new RustFunction(this, name, {
        manifestPath,
        binaryName: `backline-${role}`,
        runtime: 'provided.al2023',
        architecture,
        timeout,
        memorySize,
        environment,
        logGroup,
        // JSON log lines (AWS_LAMBDA_LOG_FORMAT=JSON): the functions log JSON, and the
        // finalizer's Embedded Metric Format lines become metrics.
        loggingFormat: lambda.LoggingFormat.JSON,
        tracing: lambda.Tracing.ACTIVE,
        description: `Backline ${role}`,
        ...extra,
      });
    };
    const mount = infra.efs ? this.efsMount(infra.efs) : undefined;
    this.functions = {
      planner: fn('planner', PLANNER_TIMEOUT, 512),
      worker: fn('worker', timeout(workMapping), infra.worker_memory_mb, mount ?? {}),
      finalizer: fn('finalizer', timeout(finalizeMapping), 512),
    };
    const { planner, worker, finalizer } = this.functions;

    // Who sends to and reads from what.
    work.main.grantSendMessages(planner);
    work.main.grantSendMessages(worker); // archived objects wait as delayed chunks
    finalize.main.grantSendMessages(planner);
    finalize.main.grantSendMessages(worker);
    for (const f of [planner, worker, finalizer]) {
      f.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [this.ledger.tableArn],
        }),
      );
    }
    const eventSource = (m: Mapping) =>
      new SqsEventSource(m.queue === 'work' ? work.main : finalize.main, {
        batchSize: m.batch_size,
        maxBatchingWindow: m.max_batching_window_seconds ? Duration.seconds(m.max_batching_window_seconds) : undefined,
        reportBatchItemFailures: true,
        maxConcurrency: maxConcurrency(m, infra),
      });
    worker.addEventSource(eventSource(workMapping));
    finalizer.addEventSource(eventSource(finalizeMapping));
    // PutMetricData has no resource-level permissions; the condition pins the namespace.
    finalizer.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': 'Backline' } },
      }),
    );
    for (const job of jobs) {
      for (const [role, f] of Object.entries(this.functions) as [Role, lambda.Function][]) {
        for (const statement of statementsFor(job, role)) f.addToRolePolicy(statement);
      }
    }

    this.schedules(jobs, planner);
    this.alarmTopic = this.alarms(props.deployment, [work.dlq, finalize.dlq], key);
    this.dashboard(jobs, work.main);
    this.suppressions();

    // What an operator needs by hand: invoking the planner, redriving the DLQs, asking the ledger.
    new CfnOutput(this, 'PlannerFunctionName', { value: planner.functionName });
    new CfnOutput(this, 'WorkQueueUrl', { value: work.main.queueUrl });
    new CfnOutput(this, 'WorkDlqArn', { value: work.dlq.queueArn });
    new CfnOutput(this, 'FinalizeDlqArn', { value: finalize.dlq.queueArn });
    new CfnOutput(this, 'LedgerTableName', { value: this.ledger.tableName });
  }

  /** Buckets the deployment creates, as a careful team would: nothing public, nothing lost. */
  private createBuckets({ infra }: Deployment, key: kms.IKey | undefined) {
    if (!infra.create_buckets.length) return;
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    NagSuppressions.addResourceSuppressions(accessLogs, [
      { id: 'AwsSolutions-S1', reason: 'This is the access-log bucket; logging it into itself would loop.' },
    ]);
    for (const bucketName of infra.create_buckets) {
      const lifecycleRules: s3.LifecycleRule[] = [
        { id: 'expire-old-versions', noncurrentVersionExpiration: Duration.days(infra.noncurrent_expiry_days) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ];
      if (infra.deleted_expiry_days) {
        lifecycleRules.push({
          id: 'expire-deleted-at-source',
          tagFilters: { Deleted: 'True' },
          expiration: Duration.days(infra.deleted_expiry_days),
        });
      }
      new s3.Bucket(this, `Bucket-${bucketName}`, {
        bucketName,
        versioned: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        encryption: key ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
        encryptionKey: key,
        bucketKeyEnabled: key ? true : undefined,
        enforceSSL: true,
        lifecycleRules,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${bucketName}/`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }
  }

  private efsMount(config: NonNullable<Deployment['infra']['efs']>): Mount {
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: config.vpc_id,
      availabilityZones: config.availability_zones,
      privateSubnetIds: config.subnet_ids,
    });
    const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(this, 'EfsSecurityGroup', config.security_group_id);
    const fileSystem = efs.FileSystem.fromFileSystemAttributes(this, 'FileSystem', {
      fileSystemId: config.file_system_id,
      securityGroup,
    });
    const accessPoint = efs.AccessPoint.fromAccessPointAttributes(this, 'AccessPoint', {
      accessPointId: config.access_point_id,
      fileSystem,
    });
    return {
      vpc,
      vpcSubnets: { subnets: vpc.privateSubnets },
      securityGroups: [securityGroup],
      filesystem: lambda.FileSystem.fromEfsAccessPoint(accessPoint, config.mount_path ?? '/mnt/backline'),
    };
  }

  /** One EventBridge Scheduler schedule per scheduled job; its input is the planner request. */
  private schedules(jobs: Job[], planner: lambda.Function) {
    const scheduled = jobs.filter((job) => job.schedule);
    if (!scheduled.length) return;
    const role = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    });
    planner.grantInvoke(role);
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'Invoking the planner function includes its versions and aliases (function ARN followed by :*).',
          appliesTo: [{ regex: '/^Resource::<Planner[A-Za-z0-9]+\\.Arn>:\\*$/g' }],
        },
      ],
      true,
    );
    for (const job of scheduled) {
      new scheduler.CfnSchedule(this, `Schedule-${job.name}`, {
        name: `backline-${job.name}`,
        description: `Backline job ${job.name} (${job.kind})`,
        scheduleExpression: job.schedule!,
        scheduleExpressionTimezone: 'UTC',
        flexibleTimeWindow: { mode: 'OFF' },
        target: {
          arn: planner.functionArn,
          roleArn: role.roleArn,
          // The job travels inline, so the planner needs no job file; the scheduled time makes
          // the run id, so a retried invocation plans the same run once.
          input: JSON.stringify(scheduleInput(job)),
          retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
        },
      });
    }
  }

  private alarms({ infra, jobs }: Deployment, dlqs: sqs.Queue[], key: kms.IKey | undefined): sns.Topic {
    const topic = new sns.Topic(this, 'Alarms', {
      displayName: 'Backline alarms',
      masterKey: key ?? kms.Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    if (infra.alarm_email) topic.addSubscription(new subscriptions.EmailSubscription(infra.alarm_email));
    const action = new SnsAction(topic);
    const alarm = (id: string, metric: cloudwatch.IMetric, description: string) =>
      new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      }).addAlarmAction(action);
    dlqs.forEach((dlq, i) =>
      alarm(
        `DlqDepth${i}`,
        dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
        'Messages in a Backline dead-letter queue: a chunk or finalize failed five times. See the README on redriving.',
      ),
    );
    for (const [role, f] of Object.entries(this.functions)) {
      alarm(`Errors-${role}`, f.metricErrors({ period: Duration.minutes(5) }), `The Backline ${role} function failed.`);
    }
    for (const job of jobs) {
      alarm(
        `TasksFailed-${job.name}`,
        new cloudwatch.Metric({
          namespace: 'Backline',
          metricName: 'TasksFailed',
          dimensionsMap: { Job: job.name },
          statistic: 'Sum',
          period: Duration.hours(1),
        }),
        `Backline job ${job.name} finished with failed tasks: see its report.`,
      );
    }
    return topic;
  }

  private dashboard(jobs: Job[], work: sqs.Queue) {
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: `${this.stackName}-runs` });
    for (const name of METRICS) {
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: name,
          width: 12,
          left: jobs.map(
            (job) =>
              new cloudwatch.Metric({
                namespace: 'Backline',
                metricName: name,
                dimensionsMap: { Job: job.name },
                statistic: 'Sum',
                period: Duration.hours(1),
                label: job.name,
              }),
          ),
        }),
      );
    }
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Work queue',
        width: 12,
        left: [work.metricApproximateNumberOfMessagesVisible(), work.metricApproximateAgeOfOldestMessage()],
      }),
    );
  }

  private suppressions() {
    for (const f of Object.values(this.functions)) {
      NagSuppressions.addResourceSuppressions(
        f,
        [
          {
            id: 'AwsSolutions-IAM4',
            reason: 'AWSLambdaBasicExecutionRole and AWSLambdaVPCAccessExecutionRole grant only log writes and ENI management.',
            appliesTo: [
              'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
              'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
            ],
          },
          {
            id: 'AwsSolutions-IAM5',
            reason:
              'Objects under named buckets and prefixes (bucket/prefix*) cannot be named one by one; X-Ray trace ' +
              'writes and CloudWatch PutMetricData have no resource-level permissions (PutMetricData is pinned to ' +
              'the Backline namespace by condition); EFS ClientMount is granted by CDK on * under a condition on ' +
              'the access point ARN. QuickSight jobs: assets, users and bundle jobs are not known before a run, so ' +
              'QuickSight actions name one account and region (arn:aws:quicksight:REGION:ACCOUNT:*); those without ' +
              'resource-level permissions (ListDataSets, ListDataSources, ListRefreshSchedules, CreateDataSource, ' +
              'CreateVPCConnection) are on * pinned to the region by aws:RequestedRegion, and DynamoDB ListTables ' +
              '(retention of dated tables) has none either.',
            appliesTo: [
              'Resource::*',
              { regex: '/^Resource::arn:aws:s3:::[a-z0-9.-]+\\/.*\\*$/g' },
              // Filesystem jobs: one bucket per folder, {bucket_prefix}-{slug}, named at run time.
              { regex: '/^Resource::arn:aws:s3:::[a-z0-9-]+-\\*(\\/.*\\*)?$/g' },
              // QuickSight jobs: one account's assets and identities in one region.
              { regex: '/^Resource::arn:aws:quicksight:[a-z0-9-]+:[0-9]{12}:\\*$/g' },
            ],
          },
        ],
        true,
      );
    }
  }
}

/** The planner request a schedule sends for a job: the same JSON as events/planner-inline.json. */
export function scheduleInput(job: Job): Record<string, unknown> {
  const { schedule: _schedule, ...inline } = job;
  return { job: inline, time: '<aws.scheduler.scheduled-time>' };
}

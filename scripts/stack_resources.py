"""Creates the local stack's queues, ledger table and demo buckets; prints their environment.

The queues are made as infra/event-sources.json describes them (names, visibility time-out,
DLQ after max_receive_count receives), as the CDK stack makes them on AWS. The worker's
time-out is the [infra] default, or BACKLINE_WORKER_TIMEOUT_SECONDS for a shorter local one.
"""
import json
import os
import pathlib

import boto3

STACK = "backline"
sources = json.loads((pathlib.Path(__file__).parent.parent / "infra" / "event-sources.json").read_text())
worker_timeout = int(os.environ.get("BACKLINE_WORKER_TIMEOUT_SECONDS", "900"))

sqs = boto3.client("sqs")
urls = {}
for mapping in sources["mappings"]:
    name = f"{STACK}-{mapping['queue']}"
    dlq = sqs.create_queue(
        QueueName=f"{name}-dlq",
        Attributes={"MessageRetentionPeriod": str(sources["dlq_retention_days"] * 86400)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    timeout = mapping["timeout_seconds"] or worker_timeout
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": sources["max_receive_count"]}
    urls[mapping["queue"]] = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(timeout * sources["visibility_factor"]),
            "MessageRetentionPeriod": str(sources["retention_days"] * 86400),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]

dynamodb = boto3.client("dynamodb")
if "backline-ledger" not in dynamodb.list_tables()["TableNames"]:
    dynamodb.create_table(
        TableName="backline-ledger",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
s3 = boto3.client("s3")
for bucket in ("photos-prod", "photos-backup"):
    s3.create_bucket(Bucket=bucket)
print(f"export BACKLINE_WORK_QUEUE_URL={urls['work']}")
print(f"export BACKLINE_FINALIZE_QUEUE_URL={urls['finalize']}")
print("export BACKLINE_LEDGER_TABLE=backline-ledger")
print("export BACKLINE_CONFIG=events/jobs.toml")

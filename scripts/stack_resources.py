"""Creates the local stack's queues, ledger table and demo buckets; prints their environment."""
import boto3

sqs = boto3.client("sqs")
work = sqs.create_queue(QueueName="backline-work")["QueueUrl"]
finalize = sqs.create_queue(QueueName="backline-finalize")["QueueUrl"]
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
print(f"export BACKLINE_WORK_QUEUE_URL={work}")
print(f"export BACKLINE_FINALIZE_QUEUE_URL={finalize}")
print("export BACKLINE_LEDGER_TABLE=backline-ledger")
print("export BACKLINE_CONFIG=events/jobs.toml")

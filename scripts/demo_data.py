"""Fills the demo source bucket with a few hundred objects of mixed shapes."""
import random

import boto3

s3 = boto3.client("s3")
bucket = "photos-prod"
rng = random.Random(7)
shapes = [
    "2026/11/{i:04d}.jpg",
    "albums/summer trip/IMG {i:04d}.jpg",
    "ünïcödé/写真/{i:04d}.png",
    "odd/plus+percent%25/{i:04d}.raw",
    "deep/" * 20 + "{i:04d}.txt",
]
count = 0
for i in range(300):
    key = shapes[i % len(shapes)].format(i=i)
    body = rng.randbytes(rng.randint(1, 64 * 1024))
    extra = {"Metadata": {"camera": f"cam-{i % 4}"}, "ContentType": "image/jpeg"}
    if i % 3 == 0:
        extra["Tagging"] = f"album=a{i % 5}&year=2026"
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    count += 1
# One large object, copied in parts because the demo job's threshold is low.
s3.put_object(Bucket=bucket, Key="videos/holiday.mp4", Body=rng.randbytes(12 * 1024 * 1024), ContentType="video/mp4")
print(f"demo source bucket {bucket}: {count + 1} objects")

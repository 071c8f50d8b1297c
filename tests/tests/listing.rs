//! The S3 planner's parallel listing (`aws::listing`) against moto_server: folders listed at
//! once still come back as one listing in key order, with nothing left out or repeated.

use backline::aws::listing::{ListingOptions, OrderedListing};
use backline_tests::{Moto, TestObject, create_bucket, put, unique};

/// The plain, sequential listing: what the parallel one must equal.
async fn listed_plainly(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.expect("list").contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    keys
}

async fn listed_in_parallel(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, parallel: usize) -> Vec<String> {
    // Pages of two keys, so folders span pages and pages mix objects and folders.
    let options = ListingOptions { parallel, max_keys: Some(2) };
    let mut listing = OrderedListing::start(s3.clone(), bucket, prefix, options);
    let mut keys = Vec::new();
    while let Some(page) = listing.next_page().await {
        keys.extend(page.expect("list").iter().filter_map(|o| o.key().map(str::to_string)));
    }
    keys
}

async fn bucket_with(s3: &aws_sdk_s3::Client, keys: &[String]) -> String {
    let bucket = unique("listing");
    create_bucket(s3, &bucket).await;
    for key in keys {
        put(s3, &bucket, &TestObject::new(key.clone(), key.as_bytes().to_vec())).await;
    }
    bucket
}

fn mixed_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        // '.' < '/' < '0': objects sort before, inside and after the folder `a/`.
        "a",
        "a.txt",
        "a/1",
        "a/2",
        "a/b/3",
        "a/b/c/4",
        "a0",
        "b/x",
        "b/y/",
        "c",
        "d//double",
        "ünï/日本",
        "~last",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    keys.extend((0..7).map(|i| format!("many/{i:02}")));
    keys.extend((0..5).map(|i| format!("f{i}/only")));
    keys
}

#[tokio::test]
async fn folders_listed_at_once_come_back_in_key_order() {
    let s3 = Moto::get().clients().await.s3;
    let bucket = bucket_with(&s3, &mixed_keys()).await;
    let plain = listed_plainly(&s3, &bucket, "").await;
    assert_eq!(plain.len(), mixed_keys().len());
    for parallel in [1, 3, 16] {
        assert_eq!(listed_in_parallel(&s3, &bucket, "", parallel).await, plain, "{parallel} at once");
    }
    for prefix in ["a", "a/", "b/", "many/", "nothing-here/"] {
        let want = listed_plainly(&s3, &bucket, prefix).await;
        assert_eq!(listed_in_parallel(&s3, &bucket, prefix, 3).await, want, "under {prefix}");
    }
}

#[tokio::test]
async fn a_bucket_under_one_folder_is_split_below_it() {
    let s3 = Moto::get().clients().await.s3;
    let mut keys: Vec<String> = (0..6).map(|i| format!("logs/2026/{i}/part")).collect();
    keys.push("logs/2026/z-object".into());
    let bucket = bucket_with(&s3, &keys).await;
    let plain = listed_plainly(&s3, &bucket, "").await;
    assert_eq!(listed_in_parallel(&s3, &bucket, "", 2).await, plain);
    assert_eq!(listed_in_parallel(&s3, &bucket, "logs", 2).await, plain);
}

#[tokio::test]
async fn a_flat_bucket_and_an_empty_one_list_whole() {
    let s3 = Moto::get().clients().await.s3;
    let keys: Vec<String> = (0..9).map(|i| format!("flat-{i}")).collect();
    let bucket = bucket_with(&s3, &keys).await;
    assert_eq!(listed_in_parallel(&s3, &bucket, "", 4).await, keys);
    let empty = bucket_with(&s3, &[]).await;
    assert!(listed_in_parallel(&s3, &empty, "", 4).await.is_empty());
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_naming_it() {
    let s3 = Moto::get().clients().await.s3;
    let mut listing = OrderedListing::start(s3, "no-such-bucket-listing", "", ListingOptions::default());
    let err = listing.next_page().await.expect("an answer").expect_err("an error");
    assert_eq!(err.bucket, "no-such-bucket-listing");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    assert!(listing.next_page().await.is_none(), "nothing after the error");
}

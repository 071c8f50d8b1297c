//! The S3 planner's parallel listing (`aws::listing`) against moto_server: folders listed at
//! once still come back as one listing in key order, with nothing left out or repeated; large
//! folders are split, small ones and flat buckets are not, and what is listed ahead of the
//! reader stays bounded (requests counted through the fault proxy, which injects nothing here).

use std::time::Duration;

use backline::aws::listing::{ListingOptions, OrderedListing};
use backline_tests::faults::FaultProxy;
use backline_tests::{Moto, TestObject, create_bucket, put, unique};
use serde_json::json;

/// The plain, sequential listing: what the parallel one must equal.
async fn listed_plainly(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.expect("list").contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    keys
}

/// Pages of two keys, so folders span pages and pages mix objects and folders; a page of two
/// keys in one folder splits what follows, one spanning two folders does not.
fn listing(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, parallel: usize) -> OrderedListing {
    OrderedListing::start(s3.clone(), bucket, prefix, ListingOptions { parallel, max_keys: Some(2) })
}

async fn read_all(listing: &mut OrderedListing) -> Vec<String> {
    let mut keys = Vec::new();
    while let Some(page) = listing.next_page().await {
        keys.extend(page.expect("list").iter().filter_map(|o| o.key().map(str::to_string)));
    }
    keys
}

async fn listed_in_parallel(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, parallel: usize) -> Vec<String> {
    read_all(&mut listing(s3, bucket, prefix, parallel)).await
}

/// ListObjectsV2 requests the proxy has passed on so far.
async fn list_requests(proxy: &FaultProxy) -> u64 {
    proxy.stats().await["requests"]["ListObjectsV2"].as_u64().unwrap_or(0)
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

#[tokio::test]
async fn large_folders_are_split_below_them_and_small_ones_are_not() {
    let moto = Moto::get();
    let s3 = moto.clients().await.s3;
    // `big/` holds six folders of six keys; `small/` six folders of one key.
    let mut keys: Vec<String> = (0..36).map(|i| format!("big/s{}/k{}", i / 6, i % 6)).collect();
    keys.extend((0..6).map(|i| format!("small/s{i}/k")));
    let bucket = bucket_with(&s3, &keys).await;
    let proxy = FaultProxy::start(&moto.endpoint, json!([])).await;
    let through_proxy = proxy.clients().await.s3;

    // Read one page of `big/`, then nothing: its sub-folders are listed ahead, at once.
    let mut big = listing(&through_proxy, &bucket, "big/", 16);
    assert!(big.next_page().await.expect("a page").is_ok());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ahead = list_requests(&proxy).await;
    // A plain listing would have one page read and at most two more asked for.
    assert!(ahead >= 2 + 5, "the sub-folders were not listed ahead: {ahead} requests");
    let mut read = vec![];
    read.extend(keys[..2].iter().cloned());
    read.extend(read_all(&mut big).await);
    assert_eq!(read, listed_plainly(&s3, &bucket, "big/").await);

    // One key per folder: split, it would cost a request per folder; it stays plain.
    proxy.delete("stats").await;
    assert_eq!(listed_in_parallel(&through_proxy, &bucket, "small/", 16).await, keys[36..]);
    assert_eq!(list_requests(&proxy).await, 3, "six keys in pages of two");
}

#[tokio::test]
async fn what_is_listed_ahead_of_the_reader_stays_bounded() {
    let moto = Moto::get();
    let s3 = moto.clients().await.s3;
    // Thirty folders of six keys: ninety pages of two if nothing held the listing back.
    let keys: Vec<String> = (0..180).map(|i| format!("f{:02}/k{}", i / 6, i % 6)).collect();
    let bucket = bucket_with(&s3, &keys).await;
    let proxy = FaultProxy::start(&moto.endpoint, json!([])).await;
    let parallel = 3;
    let mut listing = listing(&proxy.clients().await.s3, &bucket, "", parallel);
    assert!(listing.next_page().await.expect("a page").is_ok());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The page read, two pages of folder names, and at most two pages for each of the
    // `parallel` folders ahead.
    let ahead = list_requests(&proxy).await;
    assert!(ahead <= 3 + 2 * parallel as u64, "{ahead} requests ahead of the reader");
    assert!(ahead >= 2 + parallel as u64, "the folders were not listed ahead: {ahead} requests");
    let mut read = keys[..2].to_vec();
    read.extend(read_all(&mut listing).await);
    assert_eq!(read, keys);
}

#[tokio::test]
async fn a_flat_bucket_costs_what_a_plain_listing_does() {
    let moto = Moto::get();
    let s3 = moto.clients().await.s3;
    let keys: Vec<String> = (0..9).map(|i| format!("flat-{i}")).collect();
    let bucket = bucket_with(&s3, &keys).await;
    let proxy = FaultProxy::start(&moto.endpoint, json!([])).await;
    assert_eq!(listed_in_parallel(&proxy.clients().await.s3, &bucket, "", 16).await, keys);
    assert_eq!(list_requests(&proxy).await, 5, "nine keys in pages of two");
}

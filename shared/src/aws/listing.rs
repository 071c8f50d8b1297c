//! Listing a bucket in key order through several prefixes at once.
//!
//! On S3 every ListObjectsV2 page costs tens of milliseconds and a listing's pages come one
//! after another, so a million keys are a thousand round trips in a row. Listing with
//! `Delimiter = "/"` names the "folders" under a prefix; each folder's keys form one
//! contiguous run of the bucket's key order, so the folders can be listed at the same time
//! and their pages handed on one folder after the other, the whole still in key order (the
//! state diff depends on it).
//!
//! Memory stays bounded: at most `parallel` folders are listed ahead of the one being read,
//! each holding at most `PAGES_AHEAD` pages until its turn. A level that holds a single
//! folder and nothing else (`logs/` above `logs/2024/`…) is descended into first, so a bucket
//! whose keys all sit under one prefix still splits. A flat bucket lists as it always did,
//! plus one request that finds it flat.

use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::Object;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::error_text;

/// Pages a folder listed ahead may hold until the reader reaches it.
const PAGES_AHEAD: usize = 1;
/// How many levels of lone folders (`a/`, then `a/b/`…) are descended into before splitting.
const LONE_LEVELS: usize = 4;

/// How to list: folders at once, and the page size (S3's own, 1,000, when `None`).
#[derive(Clone, Copy, Debug)]
pub struct ListingOptions {
    pub parallel: usize,
    pub max_keys: Option<i32>,
}

impl Default for ListingOptions {
    fn default() -> Self {
        ListingOptions { parallel: 16, max_keys: None }
    }
}

/// A ListObjectsV2 call that failed, with the prefix it listed.
#[derive(Debug, thiserror::Error)]
#[error("ListObjectsV2 on bucket `{bucket}` under `{prefix}`: {message}")]
pub struct ListingError {
    pub bucket: String,
    pub prefix: String,
    pub message: String,
}

type Pages = mpsc::Receiver<Result<Vec<Object>, ListingError>>;

/// The objects under a prefix, in key order, a page at a time.
pub struct OrderedListing {
    pages: Pages,
}

impl OrderedListing {
    /// Starts listing in the background; the work stops when the listing is dropped.
    pub fn start(s3: Client, bucket: &str, prefix: &str, options: ListingOptions) -> OrderedListing {
        let (tx, pages) = mpsc::channel(PAGES_AHEAD);
        let lister = Lister { s3, bucket: bucket.to_string(), options };
        tokio::spawn(lister.run(prefix.to_string(), tx));
        OrderedListing { pages }
    }

    /// The next objects in key order, `None` at the end.
    pub async fn next_page(&mut self) -> Option<Result<Vec<Object>, ListingError>> {
        self.pages.recv().await
    }
}

/// What the top level yields in key order: its own objects, or a folder being listed.
enum Entry {
    Objects(Vec<Object>),
    Folder(Pages, OwnedSemaphorePermit),
}

#[derive(Clone)]
struct Lister {
    s3: Client,
    bucket: String,
    options: ListingOptions,
}

impl Lister {
    async fn run(self, prefix: String, out: mpsc::Sender<Result<Vec<Object>, ListingError>>) {
        let mut top = prefix;
        for _ in 0..LONE_LEVELS {
            match self.lone_folder(&top).await {
                Ok(Some(folder)) => top = folder,
                Ok(None) => break,
                Err(e) => {
                    let _ = out.send(Err(e)).await;
                    return;
                }
            }
        }
        let (tx, mut entries) = mpsc::channel(PAGES_AHEAD);
        tokio::spawn(self.clone().list_top(top, tx));
        while let Some(entry) = entries.recv().await {
            match entry {
                Err(e) => {
                    let _ = out.send(Err(e)).await;
                    return;
                }
                Ok(Entry::Objects(objects)) => {
                    if out.send(Ok(objects)).await.is_err() {
                        return;
                    }
                }
                Ok(Entry::Folder(mut pages, permit)) => {
                    while let Some(page) = pages.recv().await {
                        let failed = page.is_err();
                        if out.send(page).await.is_err() || failed {
                            return;
                        }
                    }
                    // The folder is read: the next one may start.
                    drop(permit);
                }
            }
        }
    }

    /// The only folder directly under `prefix`, if it holds one folder and no objects.
    async fn lone_folder(&self, prefix: &str) -> Result<Option<String>, ListingError> {
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .max_keys(2)
            .send()
            .await
            .map_err(|e| self.error(prefix, error_text(&e)))?;
        let folders = page.common_prefixes();
        if page.contents().is_empty() && folders.len() == 1 && !page.is_truncated().unwrap_or(false) {
            // A folder the size of the prefix itself would loop (an empty delimiter segment).
            return Ok(folders[0].prefix().filter(|f| f.len() > prefix.len()).map(str::to_string));
        }
        Ok(None)
    }

    /// Lists `prefix` with a delimiter: its own objects go on as they come, each folder starts
    /// its own listing once one of `parallel` places is free.
    async fn list_top(self, prefix: String, tx: mpsc::Sender<Result<Entry, ListingError>>) {
        let places = Arc::new(Semaphore::new(self.options.parallel.max(1)));
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .delimiter("/")
            .set_max_keys(self.options.max_keys)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let mut page = match page {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Err(self.error(&prefix, error_text(&e)))).await;
                    return;
                }
            };
            // Taken, not cloned: a million objects pass through here.
            let objects = page.contents.take().unwrap_or_default();
            let folders = page.common_prefixes().iter().filter_map(|f| f.prefix());
            for item in in_key_order(objects, folders) {
                let entry = match item {
                    Item::Objects(objects) => Entry::Objects(objects),
                    Item::Folder(folder) => {
                        let Ok(place) = places.clone().acquire_owned().await else { return };
                        let (folder_tx, folder_pages) = mpsc::channel(PAGES_AHEAD);
                        tokio::spawn(self.clone().list_flat(folder.to_string(), folder_tx));
                        Entry::Folder(folder_pages, place)
                    }
                };
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Every key under `prefix`, page by page.
    async fn list_flat(self, prefix: String, tx: mpsc::Sender<Result<Vec<Object>, ListingError>>) {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&prefix)
            .set_max_keys(self.options.max_keys)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map(|p| p.contents.unwrap_or_default()).map_err(|e| self.error(&prefix, error_text(&e)));
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                return;
            }
        }
    }

    fn error(&self, prefix: &str, message: String) -> ListingError {
        ListingError { bucket: self.bucket.clone(), prefix: prefix.to_string(), message }
    }
}

enum Item<'a> {
    Objects(Vec<Object>),
    Folder(&'a str),
}

/// A delimited page's objects and folders merged into key order. Each list is sorted, and a
/// folder's keys all sort where the folder's own name does among the objects (a key that
/// is not under `a/` differs from it within its length), so comparing names is enough.
fn in_key_order<'a>(objects: Vec<Object>, folders: impl Iterator<Item = &'a str>) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    let mut objects = objects.into_iter().peekable();
    for folder in folders {
        let mut before = Vec::new();
        while let Some(object) = objects.next_if(|o| o.key().unwrap_or_default() < folder) {
            before.push(object);
        }
        if !before.is_empty() {
            items.push(Item::Objects(before));
        }
        items.push(Item::Folder(folder));
    }
    let rest: Vec<Object> = objects.collect();
    if !rest.is_empty() {
        items.push(Item::Objects(rest));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> Object {
        Object::builder().key(key).build()
    }

    fn shape(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Item::Objects(objects) => objects.iter().map(|o| o.key().unwrap()).collect::<Vec<_>>().join(","),
                Item::Folder(folder) => format!("[{folder}]"),
            })
            .collect()
    }

    #[test]
    fn objects_and_folders_merge_in_key_order() {
        // `a.txt` < `a/…` < `a0` in byte order ('.' < '/' < '0').
        let objects = vec![object("a"), object("a.txt"), object("a0"), object("c")];
        let items = in_key_order(objects, ["a/", "b/", "d/"].into_iter());
        assert_eq!(shape(&items), ["a,a.txt", "[a/]", "a0", "[b/]", "c", "[d/]"]);
        assert_eq!(shape(&in_key_order(vec![object("x")], std::iter::empty())), ["x"]);
        assert!(in_key_order(vec![], std::iter::empty()).is_empty());
    }
}

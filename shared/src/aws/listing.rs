//! Listing a bucket in key order through several prefixes at once.
//!
//! On S3 every ListObjectsV2 page costs tens of milliseconds and a listing's pages come one
//! after another, so a million keys are a thousand round trips in a row. Listing with
//! `Delimiter = "/"` names the "folders" under a prefix; each folder's keys form one
//! contiguous run of the bucket's key order, so the folders can be listed at the same time
//! and their pages handed on one folder after the other, the whole still in key order (the
//! state diff depends on it).
//!
//! A listing starts plain, page by page. A page whose keys fall into few folders (on average
//! at least `KEYS_PER_FOLDER` keys each) says the folders are large: the rest of the prefix
//! is then split, each folder listed by its own task in the same way, so a large folder is
//! split again below it, down to `MAX_SPLITS` levels. Keys spread over many small folders
//! stay one plain listing (a request per folder would cost more than it saves), and so does
//! a flat bucket, which lists exactly as a plain listing does.
//!
//! Memory stays bounded. Only the listing being read splits; folders listed ahead wait for
//! their turn holding at most two pages each, at most `parallel` of them per split level.
//! Each level has its own places, so folders ahead at one level never hold up the folder
//! being read below it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::types::Object;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::error_text;

/// Pages a listing may hold in its channel until the reader takes them.
const PAGES_AHEAD: usize = 1;
/// How many folder levels deep a listing splits at most.
const MAX_SPLITS: usize = 4;
/// A page splits what follows when its keys fall into at most one folder per this many keys
/// (four folders in a page of 1,000).
const KEYS_PER_FOLDER: usize = 250;

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

type Page = Result<Vec<Object>, ListingError>;
type Pages = mpsc::Receiver<Page>;
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The objects under a prefix, in key order, a page at a time.
pub struct OrderedListing {
    pages: Pages,
}

impl OrderedListing {
    /// Starts listing in the background; the work stops when the listing is dropped.
    pub fn start(s3: Client, bucket: &str, prefix: &str, options: ListingOptions) -> OrderedListing {
        let (tx, pages) = mpsc::channel(PAGES_AHEAD);
        let lister = Lister { s3, bucket: bucket.to_string(), options };
        tokio::spawn(lister.list(prefix.to_string(), None, 0, tx));
        OrderedListing { pages }
    }

    /// The next objects in key order, `None` at the end.
    pub async fn next_page(&mut self) -> Option<Page> {
        self.pages.recv().await
    }
}

/// What a split listing yields in key order: objects of its own prefix, or a folder being
/// listed (with its place among the folders listed ahead).
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
    /// Lists the keys under `prefix` after `start_after` into `out`, page by page, until a
    /// page shows that what follows is worth splitting; `splits` is how deep this listing is.
    // A boxed future: the listing spawns listings of its own kind.
    fn list(self, prefix: String, start_after: Option<String>, splits: usize, out: mpsc::Sender<Page>) -> Task {
        Box::pin(async move {
            let mut token = None;
            loop {
                let mut page = match self.page(&prefix, false, start_after.as_deref(), token.take()).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = out.send(Err(e)).await;
                        return;
                    }
                };
                token = next_token(&mut page);
                // Taken, not cloned: a million objects pass through here.
                let objects = page.contents.take().unwrap_or_default();
                let split_after = (token.is_some() && splits < MAX_SPLITS && worth_splitting(&prefix, &objects))
                    .then(|| objects.last().and_then(|o| o.key.clone()))
                    .flatten();
                if out.send(Ok(objects)).await.is_err() || token.is_none() {
                    return;
                }
                if let Some(after) = split_after {
                    // The page just sent is taken once this listing is the one being read:
                    // only that one splits, so what is listed ahead stays bounded.
                    if out.reserve().await.is_err() {
                        return;
                    }
                    return self.split(prefix, after, splits, out).await;
                }
            }
        })
    }

    /// The rest of `prefix` after the key `after`, each folder listed by its own task.
    async fn split(self, prefix: String, after: String, splits: usize, out: mpsc::Sender<Page>) {
        // Room for every folder that may be listed ahead (the places bound them), or for as
        // many pages of the prefix's own objects.
        let (tx, mut entries) = mpsc::channel(self.options.parallel.max(1));
        tokio::spawn(self.list_folders(prefix, after, splits, tx));
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
                Ok(Entry::Folder(mut pages, place)) => {
                    while let Some(page) = pages.recv().await {
                        let failed = page.is_err();
                        if out.send(page).await.is_err() || failed {
                            return;
                        }
                    }
                    // The folder is read: the next one may start.
                    drop(place);
                }
            }
        }
    }

    /// Lists `prefix` after `after` with a delimiter: its own objects go on as they come, each
    /// folder starts its own listing once one of `parallel` places is free.
    async fn list_folders(
        self,
        prefix: String,
        after: String,
        splits: usize,
        tx: mpsc::Sender<Result<Entry, ListingError>>,
    ) {
        let places = Arc::new(Semaphore::new(self.options.parallel.max(1)));
        // The folder the last key read sits in goes on from that key. S3 names it again in a
        // listing that starts after the key, moto does not: it is left out of what follows.
        let open = folder_of(&prefix, &after).map(str::to_string);
        if let Some(folder) = &open {
            let Some(entry) = self.start_folder(&places, folder, Some(after.clone()), splits).await else { return };
            if tx.send(Ok(entry)).await.is_err() {
                return;
            }
        }
        let mut token = None;
        loop {
            let mut page = match self.page(&prefix, true, Some(&after), token.take()).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            token = next_token(&mut page);
            let objects = page.contents.take().unwrap_or_default();
            let folders =
                page.common_prefixes().iter().filter_map(|f| f.prefix()).filter(|f| Some(*f) != open.as_deref());
            for item in in_key_order(objects, folders) {
                let entry = match item {
                    Item::Objects(objects) => Entry::Objects(objects),
                    Item::Folder(folder) => match self.start_folder(&places, folder, None, splits).await {
                        Some(entry) => entry,
                        None => return,
                    },
                };
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
            }
            if token.is_none() {
                return;
            }
        }
    }

    /// Starts listing `folder` once a place is free.
    async fn start_folder(
        &self,
        places: &Arc<Semaphore>,
        folder: &str,
        start_after: Option<String>,
        splits: usize,
    ) -> Option<Entry> {
        let place = places.clone().acquire_owned().await.ok()?;
        let (folder_tx, folder_pages) = mpsc::channel(PAGES_AHEAD);
        tokio::spawn(self.clone().list(folder.to_string(), start_after, splits + 1, folder_tx));
        Some(Entry::Folder(folder_pages, place))
    }

    /// One page under `prefix`: from `start_after`, or on from a continuation token.
    async fn page(
        &self,
        prefix: &str,
        delimited: bool,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<ListObjectsV2Output, ListingError> {
        let request = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimited.then(|| "/".to_string()))
            .set_max_keys(self.options.max_keys);
        let request = match token {
            Some(token) => request.continuation_token(token),
            None => request.set_start_after(start_after.map(str::to_string)),
        };
        request.send().await.map_err(|e| self.error(prefix, error_text(&e)))
    }

    fn error(&self, prefix: &str, message: String) -> ListingError {
        ListingError { bucket: self.bucket.clone(), prefix: prefix.to_string(), message }
    }
}

/// The token of the next page, if there is one.
fn next_token(page: &mut ListObjectsV2Output) -> Option<String> {
    let token = page.next_continuation_token.take().filter(|t| !t.is_empty());
    token.filter(|_| page.is_truncated().unwrap_or(false))
}

/// The folder directly under `prefix` that `key` sits in (`a/` for `a/b/c` under ``).
fn folder_of<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    let cut = key.strip_prefix(prefix)?.find('/')?;
    Some(&key[..prefix.len() + cut + 1])
}

/// Whether a page's keys fall into few enough folders directly under `prefix` that listing
/// those folders at once saves time: at least one, and on average `KEYS_PER_FOLDER` keys in each.
fn worth_splitting(prefix: &str, objects: &[Object]) -> bool {
    let mut folders = 0;
    let mut last = None;
    for folder in objects.iter().filter_map(|o| folder_of(prefix, o.key()?)) {
        if last != Some(folder) {
            folders += 1;
            last = Some(folder);
        }
    }
    folders >= 1 && folders <= (objects.len() / KEYS_PER_FOLDER).max(1)
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

    #[test]
    fn a_key_sits_in_the_folder_directly_under_the_prefix() {
        assert_eq!(folder_of("", "a/b/c"), Some("a/"));
        assert_eq!(folder_of("a/", "a/b/c"), Some("a/b/"));
        assert_eq!(folder_of("a/", "a//c"), Some("a//"));
        assert_eq!(folder_of("a/", "a/file"), None);
        assert_eq!(folder_of("b/", "a/b/c"), None);
        assert_eq!(folder_of("", "ü/日本"), Some("ü/"));
    }

    #[test]
    fn pages_in_few_large_folders_split_and_the_rest_stay_plain() {
        let page = |keys: &mut dyn Iterator<Item = String>| keys.map(|k| object(&k)).collect::<Vec<_>>();
        // 1,000 keys in four folders: split; in five, or in none: not.
        let four = page(&mut (0..1000).map(|i| format!("d{}/{i:04}", i / 250)));
        assert!(worth_splitting("", &four));
        let five = page(&mut (0..1000).map(|i| format!("d{}/{i:04}", i / 200)));
        assert!(!worth_splitting("", &five));
        let flat = page(&mut (0..1000).map(|i| format!("{i:04}")));
        assert!(!worth_splitting("", &flat));
        // Below the prefix: `logs/2026/…` are all in one folder of `logs/`.
        let logs = page(&mut (0..1000).map(|i| format!("logs/2026/{i:04}")));
        assert!(worth_splitting("logs/", &logs) && worth_splitting("", &logs));
        assert!(!worth_splitting("logs/2026/", &logs));
        // A small page splits when it sits in one folder.
        assert!(worth_splitting("", &page(&mut ["a/1", "a/2"].map(String::from).into_iter())));
        assert!(!worth_splitting("", &page(&mut ["a/1", "b/2"].map(String::from).into_iter())));
    }
}

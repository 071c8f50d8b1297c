//! A depth-first walk in key order (see `plan::sort_name`) whose directory reads run in parallel, at most `LOOK_AHEAD`
//! directories ahead of the consumer: parallel for latency-bound file systems (EFS, NFS), and
//! bounded in memory whatever the tree's size (unlike an unbounded read-ahead).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::plan::{Found, classify};

/// Directories read ahead of the one being emitted.
const LOOK_AHEAD: usize = 16;
/// Threads reading directories (I/O bound: more than the cores).
const READERS: usize = 8;

enum Item {
    Found(Found),
    Folder(PathBuf),
}

/// One directory's entries in key order, with each file already stat'ed.
fn read_folder(path: &Path) -> VecDeque<Item> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            let key = super::plan::key_of(&path.to_string_lossy());
            return VecDeque::from([Item::Found(Found::Unreadable {
                key,
                reason: format!("cannot read folder: {e}"),
            })]);
        }
    };
    let mut named: Vec<(String, std::ffi::OsString, std::io::Result<std::fs::FileType>)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let file_type = e.file_type();
            let is_folder = file_type.as_ref().is_ok_and(|t| t.is_dir());
            (super::plan::sort_name(&e.file_name(), is_folder), e.file_name(), file_type)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
        .into_iter()
        .filter_map(|(_, name, file_type)| {
            let child = path.join(&name);
            match file_type {
                Ok(t) if t.is_dir() => Some(Item::Folder(child)),
                Ok(t) => classify(child, t).map(Item::Found),
                Err(e) => {
                    let key = super::plan::key_of(&child.to_string_lossy());
                    Some(Item::Found(Found::Unreadable { key, reason: e.to_string() }))
                }
            }
        })
        .collect()
}

struct Reader {
    pool: rayon::ThreadPool,
    pending: HashMap<PathBuf, mpsc::Receiver<VecDeque<Item>>>,
}

impl Reader {
    fn request(&mut self, path: &Path) {
        if self.pending.contains_key(path) {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let owned = path.to_path_buf();
        self.pool.spawn(move || {
            let _ = tx.send(read_folder(&owned));
        });
        self.pending.insert(path.to_path_buf(), rx);
    }

    fn take(&mut self, path: &Path) -> VecDeque<Item> {
        self.request(path);
        let rx = self.pending.remove(path).expect("requested");
        rx.recv().unwrap_or_default()
    }
}

/// Walks `root`, calling `emit` for every non-folder entry in key order; stops early when
/// `emit` returns false.
pub fn walk(root: &Path, mut emit: impl FnMut(Found) -> bool) {
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(READERS).thread_name(|i| format!("walk-{i}")).build() {
        Ok(pool) => pool,
        Err(e) => {
            emit(Found::Unreadable { key: super::plan::key_of(&root.to_string_lossy()), reason: e.to_string() });
            return;
        }
    };
    let mut reader = Reader { pool, pending: HashMap::new() };
    let mut stack: Vec<VecDeque<Item>> = vec![reader.take(root)];
    while let Some(level) = stack.last_mut() {
        let Some(item) = level.pop_front() else {
            stack.pop();
            continue;
        };
        match item {
            Item::Found(found) => {
                if !emit(found) {
                    return;
                }
            }
            Item::Folder(path) => {
                // Keep the next folders of this level reading while this one is walked.
                for next in
                    level.iter().filter_map(|i| if let Item::Folder(p) = i { Some(p) } else { None }).take(LOOK_AHEAD)
                {
                    reader.request(next);
                }
                let children = reader.take(&path);
                stack.push(children);
            }
        }
    }
}

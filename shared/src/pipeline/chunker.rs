//! Groups tasks into chunks a worker finishes well inside its timeout.

use serde_json::Value;

use crate::model::Chunk;

pub struct Chunker {
    kind: &'static str,
    max_tasks: usize,
    max_bytes: u64,
    next_seq: u32,
    tasks: Vec<Value>,
    bytes: u64,
}

impl Chunker {
    /// Defaults sized for a 15-minute worker doing server-side copies.
    pub const MAX_TASKS: usize = 500;
    pub const MAX_BYTES: u64 = 8 << 30;

    pub fn new(kind: &'static str, max_tasks: usize, max_bytes: u64) -> Chunker {
        Chunker { kind, max_tasks: max_tasks.max(1), max_bytes, next_seq: 0, tasks: Vec::new(), bytes: 0 }
    }

    /// Adds a task; returns the chunk it closed, if any. A task larger than `max_bytes`
    /// travels alone.
    pub fn push(&mut self, task: Value, bytes: u64) -> Option<Chunk> {
        let closed = if !self.tasks.is_empty() && self.bytes + bytes > self.max_bytes { self.take() } else { None };
        self.bytes += bytes;
        self.tasks.push(task);
        if closed.is_none() && self.tasks.len() >= self.max_tasks {
            return self.take();
        }
        closed
    }

    pub fn finish(&mut self) -> Option<Chunk> {
        self.take()
    }

    /// Chunks handed out so far.
    pub fn chunks(&self) -> u32 {
        self.next_seq
    }

    fn take(&mut self) -> Option<Chunk> {
        if self.tasks.is_empty() {
            return None;
        }
        self.bytes = 0;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(Chunk::new(seq, self.kind, std::mem::take(&mut self.tasks)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(size: u64) -> Value {
        serde_json::json!({"action": "copy", "size": size})
    }

    fn push(chunker: &mut Chunker, size: u64) -> Option<Chunk> {
        chunker.push(copy(size), size)
    }

    #[test]
    fn chunks_close_on_count() {
        let mut chunker = Chunker::new("s3", 2, u64::MAX);
        assert!(push(&mut chunker, 1).is_none());
        let chunk = push(&mut chunker, 1).unwrap();
        assert_eq!((chunk.seq, chunk.tasks.len()), (0, 2));
        assert!(push(&mut chunker, 1).is_none());
        assert_eq!(chunker.finish().unwrap().seq, 1);
        assert!(chunker.finish().is_none());
        assert_eq!(chunker.chunks(), 2);
    }

    #[test]
    fn chunks_close_on_bytes_and_big_tasks_travel_alone() {
        let mut chunker = Chunker::new("s3", 100, 10);
        assert!(push(&mut chunker, 6).is_none());
        let first = push(&mut chunker, 50).unwrap();
        assert_eq!(first.tasks.len(), 1);
        let big = push(&mut chunker, 1).unwrap();
        assert_eq!(big.tasks, vec![copy(50)]);
        assert_eq!(chunker.finish().unwrap().tasks, vec![copy(1)]);
    }
}

//! What real S3 costs, added to every answer so that `make bench` measures tools the way users
//! see them: loopback answers in microseconds, S3 in tens of milliseconds, and moves bytes at a
//! finite rate.
//!
//! - `BENCH_LATENCY_MS`: before the first byte of every answer (S3: about 20 ms for metadata
//!   calls). Default 0.
//! - `BENCH_COPY_MIBPS`: the rate one server-side copy (CopyObject, UploadPartCopy) runs at, so
//!   a copy takes longer in proportion to its size. Default unlimited.
//! - `BENCH_THROUGHPUT_MIBPS`: bodies sent and received (PutObject, UploadPart, GetObject) share
//!   this rate across every connection, like a client's network link. Default unlimited.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Clone)]
pub struct Latency {
    first_byte: Duration,
    copy_bytes_per_second: Option<f64>,
    /// When the shared link is next free, for the throughput cap.
    link: Option<(f64, Arc<Mutex<Instant>>)>,
    root: PathBuf,
}

fn mib_per_second(name: &str) -> Result<Option<f64>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(text) => match text.parse::<f64>() {
            Ok(rate) if rate > 0.0 => Ok(Some(rate * 1024.0 * 1024.0)),
            _ => Err(format!("{name}={text}: expected a positive number of MiB/s")),
        },
    }
}

impl Latency {
    pub fn from_env(root: &Path) -> Result<Latency, String> {
        let first_byte = match std::env::var("BENCH_LATENCY_MS") {
            Err(_) => Duration::ZERO,
            Ok(text) => Duration::from_secs_f64(
                text.parse::<f64>()
                    .ok()
                    .filter(|ms| *ms >= 0.0)
                    .ok_or_else(|| format!("BENCH_LATENCY_MS={text}: expected milliseconds"))?
                    / 1000.0,
            ),
        };
        let link = mib_per_second("BENCH_THROUGHPUT_MIBPS")?.map(|rate| (rate, Arc::new(Mutex::new(Instant::now()))));
        Ok(Latency { first_byte, copy_bytes_per_second: mib_per_second("BENCH_COPY_MIBPS")?, link, root: root.into() })
    }

    pub fn is_zero(&self) -> bool {
        self.first_byte.is_zero() && self.copy_bytes_per_second.is_none() && self.link.is_none()
    }

    pub fn describe(&self) -> String {
        let rate = |r: Option<f64>| r.map_or("unlimited".to_string(), |r| format!("{:.0} MiB/s", r / 1048576.0));
        format!(
            "first byte {} ms, copies {}, link {}",
            self.first_byte.as_millis(),
            rate(self.copy_bytes_per_second),
            rate(self.link.as_ref().map(|(r, _)| *r))
        )
    }

    /// Waits what the request costs before its answer goes out: the first-byte latency and a
    /// copy's time at the copy rate (both counted from the request's arrival, so the server's
    /// own work is inside them), and the bodies' turn on the shared link.
    pub async fn before_answer<B>(&self, request: &http::Request<B>, arrived: Instant, answer_bytes: u64) {
        let mut wait = self.first_byte;
        if let (Some(rate), Some(bytes)) = (self.copy_bytes_per_second, self.copied_bytes(request)) {
            wait += Duration::from_secs_f64(bytes as f64 / rate);
        }
        let sent: u64 = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let start = Instant::now();
        let mut until = arrived + wait;
        if let Some((rate, free_at)) = &self.link {
            let bytes = sent + answer_bytes;
            if bytes > 0 {
                let mut free_at = free_at.lock().await;
                let begin = (*free_at).max(start);
                *free_at = begin + Duration::from_secs_f64(bytes as f64 / rate);
                until = until.max(*free_at);
            }
        }
        tokio::time::sleep_until(until).await;
    }

    /// The bytes a server-side copy moves: its range, or its source object's size on disk.
    fn copied_bytes<B>(&self, request: &http::Request<B>) -> Option<u64> {
        let headers = request.headers();
        let source = headers.get("x-amz-copy-source")?.to_str().ok()?;
        if let Some(range) = headers.get("x-amz-copy-source-range").and_then(|v| v.to_str().ok()) {
            let (first, last) = range.strip_prefix("bytes=")?.split_once('-')?;
            return Some(last.parse::<u64>().ok()? + 1 - first.parse::<u64>().ok()?);
        }
        let source = source.trim_start_matches('/').split('?').next()?;
        let decoded = percent_decode(source);
        std::fs::metadata(self.root.join(decoded)).ok().map(|m| m.len())
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! The S3 server `make bench` runs every tool against: s3s-fs (objects as files, so the server is
//! rarely the bottleneck) with two additions a fair benchmark needs.
//!
//! - Every request is counted by operation at the server, whichever tool sent it.
//!   `GET /_bench/counts` answers the counts as JSON; `POST /_bench/reset` zeroes them.
//!   `GET /_bench/tags?bucket=B` answers every tagged key of bucket B with its tags.
//! - Object tags and the bucket settings a filesystem job checks (versioning, lifecycle, public
//!   access block, default encryption), which s3s-fs does not implement, are kept in memory, so
//!   Backline's own requests for them are made and counted as they would be on S3.
//!
//! - With `BENCH_LATENCY_MS`, `BENCH_COPY_MIBPS` and `BENCH_THROUGHPUT_MIBPS` set, answers take
//!   as long as they would on S3 (see `latency.rs`); unset, the server answers at loopback speed.
//!
//! Usage: `bench-s3-server <root> <port> <access-key> <secret-key>`

mod extras;
mod latency;
mod synthetic;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s::{Body, S3Result};
use tokio::net::TcpListener;

#[derive(Default, Clone)]
struct RequestCounter {
    by_operation: Arc<Mutex<BTreeMap<String, u64>>>,
}

#[async_trait::async_trait]
impl S3Access for RequestCounter {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let mut counts = self.by_operation.lock().unwrap();
        *counts.entry(cx.s3_op().name().to_string()).or_default() += 1;
        Ok(())
    }
}

impl RequestCounter {
    fn json(&self) -> String {
        let counts = self.by_operation.lock().unwrap();
        let total: u64 = counts.values().sum();
        serde_json::json!({ "total": total, "by_operation": *counts }).to_string()
    }
}

fn usage() -> ! {
    eprintln!("usage: bench-s3-server <root> <port> <access-key> <secret-key>");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, port, access_key, secret_key] = args.as_slice() else { usage() };
    let port: u16 = port.parse().unwrap_or_else(|_| usage());

    let counter = RequestCounter::default();
    let root = std::fs::canonicalize(root).map_err(|e| format!("{root}: {e}"))?;
    let latency = latency::Latency::from_env(&root)?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| format!("{}: {e:?}", root.display()))?;
    let server = extras::WithExtras::new(fs, root);
    let tags = server.tags();
    let s3 = {
        let mut builder = S3ServiceBuilder::new(server);
        builder.set_auth(SimpleAuth::from_single(access_key.as_str(), secret_key.as_str()));
        builder.set_access(counter.clone());
        builder.build()
    };

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    if !latency.is_zero() {
        println!("latency: {}", latency.describe());
    }
    let connections = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await?;
        let (s3, counter, tags, latency) = (s3.clone(), counter.clone(), tags.clone(), latency.clone());
        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let (s3, counter, tags, latency) = (s3.clone(), counter.clone(), tags.clone(), latency.clone());
            async move {
                let answer = match request.uri().path() {
                    "/_bench/counts" => counter.json(),
                    "/_bench/reset" => {
                        counter.by_operation.lock().unwrap().clear();
                        counter.json()
                    }
                    "/_bench/tags" => tags_json(&tags, request.uri().query().unwrap_or_default()),
                    _ => return Ok::<_, Infallible>(answer_s3(&s3, &latency, request).await),
                };
                Ok(http::Response::new(Body::from(answer)))
            }
        });
        let connection = connections.serve_connection(TokioIo::new(socket), service).into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// An S3 request answered by s3s, no sooner than it would be on S3.
async fn answer_s3(
    s3: &s3s::service::S3Service,
    latency: &latency::Latency,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    if latency.is_zero() {
        return s3.call(request.map(Body::from)).await.unwrap_or_else(internal);
    }
    let arrived = tokio::time::Instant::now();
    let mut head = http::Request::new(());
    *head.headers_mut() = request.headers().clone();
    let response = s3.call(request.map(Body::from)).await.unwrap_or_else(internal);
    let answer_bytes = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    latency.before_answer(&head, arrived, answer_bytes).await;
    response
}

fn tags_json(tags: &extras::TagStore, query: &str) -> String {
    let bucket = query.strip_prefix("bucket=").unwrap_or_default();
    let tags = tags.lock().unwrap();
    let tagged: BTreeMap<&str, BTreeMap<&str, &str>> = tags
        .iter()
        .filter(|((b, _), _)| b == bucket)
        .map(|((_, key), set)| {
            (
                key.as_str(),
                set.iter()
                    .map(|t| (t.key.as_deref().unwrap_or_default(), t.value.as_deref().unwrap_or_default()))
                    .collect(),
            )
        })
        .collect();
    serde_json::to_string(&tagged).unwrap_or_default()
}

fn internal(error: s3s::HttpError) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(format!("{error:?}")));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

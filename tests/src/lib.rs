//! Test harness: one `moto_server` per test process on a free loopback port, and helpers to
//! make buckets, objects, queues and the ledger table in it.
//!
//! moto comes from `make setup` (`.venv/bin/moto_server`), or from `MOTO_SERVER`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_s3::primitives::ByteStream;
use backline::aws::AwsClients;

pub struct Moto {
    pub endpoint: String,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

fn moto_server_path() -> PathBuf {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = workspace.join(".venv/bin/moto_server");
    assert!(path.exists(), "{} not found: run `make setup` (or set MOTO_SERVER)", path.display());
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

impl Moto {
    /// The moto_server of this test process, started on first use.
    pub fn get() -> &'static Moto {
        MOTO.get_or_init(|| {
            let port = free_port();
            let path = moto_server_path();
            let mut command = Command::new(&path);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
            if let Err(err) = spawn_for_process(command) {
                panic!("cannot start {}: {err}", moto_server_path().display());
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 60 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            Moto { endpoint: format!("http://127.0.0.1:{port}") }
        })
    }

    /// The environment a `backline` process needs to talk to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "moto"))
            .load()
            .await
    }

    pub async fn clients(&self) -> AwsClients {
        AwsClients::from_sdk_config(&self.sdk_config().await)
    }
}

/// Makes `command`'s process die with the thread that spawns it (PR_SET_PDEATHSIG): a test
/// that panics or is killed leaves no server behind.
pub fn killed_with_spawning_thread(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Starts a server that lives as long as the test process. It is spawned from a thread that
/// lives as long as the process, so that PR_SET_PDEATHSIG (which fires when the spawning
/// *thread* ends) kills it exactly when the test process exits.
pub fn spawn_for_process(mut command: Command) -> Result<(), String> {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        killed_with_spawning_thread(&mut command);
        let child = command.spawn();
        let _ = started_tx.send(child.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        loop {
            std::thread::park();
        }
    });
    started_rx.recv().map_err(|e| e.to_string())?
}

/// The `backline` binary at `exe` (a test's `env!("CARGO_BIN_EXE_backline")`) with `args`, set
/// up to talk to this process's moto_server and nothing else.
pub fn backline_command(exe: &str, args: &[&str]) -> Command {
    let mut command = Command::new(exe);
    command.args(args).env_remove("BACKLINE_CONFIG").env_remove("AWS_PROFILE");
    for (name, value) in Moto::get().env() {
        command.env(name, value);
    }
    command
}

/// The keys of the multipart uploads open in `bucket`.
pub async fn open_uploads(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = s3.list_multipart_uploads().bucket(bucket).send().await.expect("ListMultipartUploads");
    listed.uploads().iter().filter_map(|u| u.key().map(str::to_string)).collect()
}

/// A bucket or queue name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket().bucket(name).send().await.unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}

/// An object to put, with the attributes a backup must carry over.
#[derive(Default, Clone)]
pub struct TestObject {
    pub key: String,
    pub body: Vec<u8>,
    pub metadata: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    pub storage_class: Option<aws_sdk_s3::types::StorageClass>,
}

impl TestObject {
    pub fn new(key: impl Into<String>, body: impl Into<Vec<u8>>) -> TestObject {
        TestObject { key: key.into(), body: body.into(), ..Default::default() }
    }
}

pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, object: &TestObject) {
    let mut request = s3
        .put_object()
        .bucket(bucket)
        .key(&object.key)
        .body(ByteStream::from(object.body.clone()))
        .set_content_type(object.content_type.clone())
        .set_content_encoding(object.content_encoding.clone())
        .set_content_disposition(object.content_disposition.clone())
        .set_cache_control(object.cache_control.clone())
        .set_storage_class(object.storage_class.clone());
    for (k, v) in &object.metadata {
        request = request.metadata(k, v);
    }
    if !object.tags.is_empty() {
        request = request.tagging(backline::aws::s3::encode_tagging(&object.tags));
    }
    request.send().await.unwrap_or_else(|e| panic!("put {bucket}/{}: {e:?}", object.key));
}

pub async fn tags(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let output =
        s3.get_object_tagging().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("tags of {key}: {e:?}"));
    let mut tags: Vec<(String, String)> =
        output.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
    tags.sort();
    tags
}

pub async fn body(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let output = s3.get_object().bucket(bucket).key(key).send().await.unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    output.body.collect().await.expect("body").to_vec()
}

pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.expect("list").contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    keys
}

pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    let output = sqs.create_queue().queue_name(name).send().await.expect("create queue");
    output.queue_url().expect("queue url").to_string()
}

/// Receives every message now on a queue (and deletes them).
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let output = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
        let messages = output.messages().to_vec();
        if messages.is_empty() {
            return all;
        }
        for message in &messages {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
        all.extend(messages);
    }
}

/// The ledger table as the deployment makes it.
pub async fn create_ledger_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("key");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .send()
        .await
        .expect("create ledger table");
}

/// A table keyed by the string `id`, with one tag if given.
pub async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str, tag: Option<(&str, &str)>) {
    let mut request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        );
    if let Some((key, value)) = tag {
        request = request.tags(aws_sdk_dynamodb::types::Tag::builder().key(key).value(value).build().expect("tag"));
    }
    request.send().await.unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
}

/// Sets moto's manual state transition for a model (e.g. `s3::keyrestore`).
pub fn set_transition(moto: &Moto, model: &str, times: Option<u32>) {
    let body = match times {
        Some(n) => format!(r#"{{"model_name": "{model}", "transition": {{"progression": "manual", "times": {n}}}}}"#),
        None => {
            format!(r#"{{"model_name": "{model}", "transition": {{"progression": "immediate"}}}}"#)
        }
    };
    post(moto, "/moto-api/state-manager/set-transition", &body);
}

fn post(moto: &Moto, path: &str, body: &str) {
    use std::io::{Read, Write};
    let address = moto.endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to moto");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 2") || response.starts_with("HTTP/1.0 2"), "{path}: {response}");
}

/// A fresh source bucket and a fresh backup bucket.
pub async fn source_and_target(s3: &aws_sdk_s3::Client) -> (String, String) {
    let (source, target) = (unique("src"), unique("dst"));
    create_bucket(s3, &source).await;
    create_bucket(s3, &target).await;
    (source, target)
}

/// A local HTTP listener that records the bodies POSTed to it, answering 200.
pub struct WebhookListener {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl WebhookListener {
    pub fn start() -> WebhookListener {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                store.lock().expect("lock").push((path, String::from_utf8_lossy(&body).into_owned()));
                let _ =
                    reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        WebhookListener { url, received }
    }

    /// (path, body) of every request so far.
    pub fn received(&self) -> Vec<(String, String)> {
        self.received.lock().expect("lock").clone()
    }
}

/// A fresh folder under the system temp dir, readable by every user.
pub fn temp_folder(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).expect("temp folder");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("permissions");
    dir
}

pub mod emulator;
pub mod faults;
pub mod lambda;
pub mod quicksight;
pub mod reliability;
pub mod tableau;
pub mod vault;

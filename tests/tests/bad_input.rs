//! Bad input, generated: job files in the three formats, planner events, work and finalize
//! message bodies, state files, manifests, Tableau responses and restore keys. Every input is
//! either refused with an error that says where, or read correctly; nothing panics.
//!
//! Inputs are valid examples mutated (characters flipped, cut, inserted; fields removed,
//! retyped or added) plus arbitrary ones. The counts go to `RELIABILITY.md`.

use std::sync::atomic::{AtomicU64, Ordering};

use backline::config::{Config, Format};
use backline::model::{FinalizeMessage, WorkMessage};
use backline::store::{Manifest, State, StateEntry};
use backline_tests::reliability::{self, Figures};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::Value;

/// Tries and refusals of one family of inputs.
#[derive(Default)]
struct Tally {
    tried: AtomicU64,
    rejected: AtomicU64,
}

impl Tally {
    fn count<T, E>(&self, result: &Result<T, E>) {
        self.tried.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record(&self, what: &str, note: &str) {
        reliability::record(&Figures {
            scenario: format!("bad input: {what}"),
            kind: "all".into(),
            inputs_tried: self.tried.load(Ordering::Relaxed),
            inputs_rejected: self.rejected.load(Ordering::Relaxed),
            note: note.into(),
            ..Default::default()
        });
    }
}

fn runner() -> TestRunner {
    let cases = reliability::size(300, 5000) as u32;
    TestRunner::new(RunnerConfig { cases, failure_persistence: None, ..RunnerConfig::default() })
}

/// One edit of a text: flip, cut, insert or repeat a piece.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Truncate(usize),
    Insert(usize, String),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        Just("\"".to_string()),
        Just("[[jobs]]".to_string()),
        Just("\u{0}".to_string()),
        Just("{".to_string()),
        Just("- ".to_string()),
        Just("../".to_string()),
        Just("=".to_string()),
        "[a-z\\[\\]{}:,\"=\n .0-9-]{0,12}".prop_map(|s| s),
    ];
    prop_oneof![
        (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), text).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match edit {
            Edit::Replace(i, c) if !chars.is_empty() => {
                let i = i % chars.len();
                chars[i] = *c;
            }
            Edit::Replace(..) => {}
            Edit::Truncate(i) => chars.truncate(at(*i, chars.len())),
            Edit::Insert(i, s) => {
                let i = at(*i, chars.len());
                chars.splice(i..i, s.chars());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, chars.len());
                let end = (i + n).min(chars.len());
                chars.drain(i..end);
            }
        }
    }
    chars.into_iter().collect()
}

/// One edit of a JSON document: a field removed, a value retyped, a field added.
#[derive(Debug, Clone)]
enum ValueEdit {
    Remove(usize),
    Retype(usize, Value),
    Add(usize, String),
}

fn value_edit() -> impl Strategy<Value = ValueEdit> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,10}".prop_map(Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ];
    prop_oneof![
        any::<usize>().prop_map(ValueEdit::Remove),
        (any::<usize>(), scalar).prop_map(|(i, v)| ValueEdit::Retype(i, v)),
        (any::<usize>(), "[a-z_]{1,8}").prop_map(|(i, k)| ValueEdit::Add(i, k)),
    ]
}

/// Paths to every object in `value`, for picking one by index.
fn objects(value: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = value {
        out.push(path.clone());
        for (key, child) in map {
            let mut child_path = path.clone();
            child_path.push(key.clone());
            objects(child, child_path, out);
        }
    } else if let Value::Array(items) = value {
        for (i, child) in items.iter().enumerate() {
            let mut child_path = path.clone();
            child_path.push(i.to_string());
            objects(child, child_path, out);
        }
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(value, |v, key| match v {
        Value::Array(items) => &mut items[key.parse::<usize>().expect("index")],
        other => &mut other[key.as_str()],
    })
}

/// Applies `edit`; returns the name of an added field (which must then be refused or ignored).
fn apply_value(value: &mut Value, edit: &ValueEdit) -> Option<String> {
    let mut paths = Vec::new();
    objects(value, Vec::new(), &mut paths);
    let pick = |i: usize| paths[i % paths.len()].clone();
    match edit {
        ValueEdit::Remove(i) | ValueEdit::Retype(i, _) => {
            let target = at_path(value, &pick(*i));
            let Value::Object(map) = target else { return None };
            let keys: Vec<String> = map.keys().cloned().collect();
            if keys.is_empty() {
                return None;
            }
            let key = &keys[*i % keys.len()];
            match edit {
                ValueEdit::Retype(_, new) => map.insert(key.clone(), new.clone()),
                _ => map.remove(key),
            };
            None
        }
        ValueEdit::Add(i, key) => {
            let name = format!("zz_{key}");
            if let Value::Object(map) = at_path(value, &pick(*i)) {
                map.insert(name.clone(), Value::from(1));
                return Some(name);
            }
            None
        }
    }
}

const EXAMPLES: &[&str] = &[
    include_str!("../../shared/src/sources/s3/example.toml"),
    include_str!("../../shared/src/sources/s3/restore/example.toml"),
    include_str!("../../shared/src/sources/filesystem/example.toml"),
    include_str!("../../shared/src/sources/filesystem/restore/example.toml"),
    include_str!("../../shared/src/sources/tableau/example.toml"),
    include_str!("../../shared/src/sources/tableau/restore/example.toml"),
    include_str!("../../shared/src/sources/quicksight/example.toml"),
    include_str!("../../shared/src/sources/quicksight/restore/example.toml"),
];

/// The example job files in each format.
fn job_files() -> Vec<(Format, &'static str, String, Value)> {
    let mut files = Vec::new();
    for example in EXAMPLES {
        let value: Value = toml::from_str(example).expect("examples are valid TOML");
        files.push((Format::Toml, "jobs.toml", example.to_string(), value.clone()));
        files.push((Format::Yaml, "jobs.yaml", serde_yaml::to_string(&value).unwrap(), value.clone()));
        files.push((Format::Json, "jobs.json", serde_json::to_string_pretty(&value).unwrap(), value));
    }
    files
}

fn serialize(format: Format, value: &Value) -> String {
    match format {
        Format::Toml => toml::to_string(value).unwrap_or_default(),
        Format::Yaml => serde_yaml::to_string(value).unwrap(),
        Format::Json => serde_json::to_string(value).unwrap(),
    }
}

#[test]
fn job_files_in_three_formats_are_read_or_refused_naming_the_file() {
    let files = job_files();
    for (format, name, text, _) in &files {
        Config::parse(text, *format, name).unwrap_or_else(|e| panic!("example {name} must load: {e}"));
    }
    let tally = Tally::default();
    runner()
        .run(&(0..files.len(), prop::collection::vec(edit(), 1..4)), |(i, edits)| {
            let (format, name, text, _) = &files[i];
            let result = Config::parse(&apply(text, &edits), *format, name);
            tally.count(&result);
            if let Err(err) = result {
                prop_assert!(err.to_string().contains(name), "the error names no file: {err}");
            }
            Ok(())
        })
        .unwrap();
    runner()
        .run(&(0..files.len(), prop::collection::vec(value_edit(), 1..3)), |(i, edits)| {
            let (format, name, text, value) = &files[i];
            let mut value = value.clone();
            let added: Vec<String> = edits.iter().filter_map(|e| apply_value(&mut value, e)).collect();
            // A later edit may have removed the field again.
            let text_now = value.to_string();
            let added: Vec<String> = added.into_iter().filter(|name| text_now.contains(name.as_str())).collect();
            let result = Config::parse(&serialize(*format, &value), *format, name);
            tally.count(&result);
            match &result {
                Err(err) => prop_assert!(err.to_string().contains(name), "the error names no file: {err}"),
                // Unknown fields are refused wherever they are added.
                Ok(_) => prop_assert!(added.is_empty(), "an unknown field {added:?} was accepted in {text}"),
            }
            Ok(())
        })
        .unwrap();
    tally.record("job files (TOML, YAML, JSON)", "every example of every kind, mutated as text and as a document");
}

#[test]
fn planner_events_are_read_or_refused() {
    let examples: Vec<Value> = [
        include_str!("../../events/planner-eventbridge.json"),
        include_str!("../../events/planner-inline.json"),
        include_str!("../../events/planner-quicksight-restore.json"),
        include_str!("../../events/planner-quicksight.json"),
        include_str!("../../events/planner-request.json"),
        include_str!("../../events/planner-restore.json"),
        include_str!("../../events/planner-scheduled.json"),
        include_str!("../../events/planner-tableau.json"),
    ]
    .iter()
    .map(|text| serde_json::from_str(text).unwrap())
    .collect();
    let tally = Tally::default();
    runner()
        .run(&(0..examples.len(), prop::collection::vec(value_edit(), 1..4)), |(i, edits)| {
            let mut event = examples[i].clone();
            edits.iter().for_each(|e| {
                apply_value(&mut event, e);
            });
            let result = backline::pipeline::events::parse_planner_event(event);
            tally.count(&result);
            if let Err(err) = result {
                prop_assert!(!err.to_string().is_empty());
            }
            Ok(())
        })
        .unwrap();
    tally.record("planner events", "every example event in events/, fields removed, retyped and added");
}

fn sqs_body(event: &str) -> String {
    let event: Value = serde_json::from_str(event).unwrap();
    event["Records"][0]["body"].as_str().unwrap().to_string()
}

#[test]
fn work_and_finalize_bodies_are_read_or_refused() {
    let work = sqs_body(include_str!("../../events/worker-sqs.json"));
    let finalize = sqs_body(include_str!("../../events/finalizer-sqs.json"));
    let message: WorkMessage = serde_json::from_str(&work).expect("the example work message");
    serde_json::from_str::<FinalizeMessage>(&finalize).expect("the example finalize message");
    let tally = Tally::default();
    runner()
        .run(&(any::<bool>(), prop::collection::vec(edit(), 1..4)), |(is_work, edits)| {
            let body = apply(if is_work { &work } else { &finalize }, &edits);
            let result = if is_work {
                serde_json::from_str::<WorkMessage>(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|m| backline::pipeline::worker::check_version(m.version()).map_err(|e| e.to_string()))
            } else {
                serde_json::from_str::<FinalizeMessage>(&body).map(|_| ()).map_err(|e| e.to_string())
            };
            tally.count(&result);
            Ok(())
        })
        .unwrap();
    // What is read back is what was written.
    let again: WorkMessage = serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(again).unwrap(), serde_json::to_value(message).unwrap());
    tally.record("work and finalize messages (SQS bodies)", "the example bodies of events/, mutated as text");
}

fn state_entry() -> impl Strategy<Value = StateEntry> {
    let fields = (
        "[ -~]{1,30}",
        any::<u64>(),
        "[0-9a-f\"-]{0,34}",
        any::<bool>(),
        proptest::option::of(any::<i64>()),
        any::<bool>(),
    );
    fields.prop_map(|(key, size, etag, deleted, mtime, untagged)| StateEntry {
        key,
        size,
        etag,
        deleted,
        mtime,
        untagged,
    })
}

#[test]
fn state_files_round_trip_and_damaged_ones_are_refused() {
    let tally = Tally::default();
    runner()
        .run(&(prop::collection::btree_map("[ -~]{1,20}", state_entry(), 0..20), "[ -~]{0,20}"), |(entries, source)| {
            let entries = entries.into_iter().map(|(key, entry)| StateEntry { key, ..entry }).collect();
            let state = State { source, run_id: "r".into(), entries };
            let decoded = State::decode(&state.encode());
            tally.count(&decoded);
            prop_assert_eq!(decoded.as_ref(), Ok(&state));
            Ok(())
        })
        .unwrap();
    let example = State {
        source: "s3://b/p".into(),
        run_id: "r".into(),
        entries: (0..5)
            .map(|i| StateEntry {
                key: format!("k{i}"),
                size: i,
                etag: format!("\"e{i}\""),
                deleted: false,
                mtime: None,
                untagged: false,
            })
            .collect(),
    };
    let text = String::from_utf8(example.encode()).unwrap();
    runner()
        .run(&prop::collection::vec(edit(), 1..4), |edits| {
            let damaged = apply(&text, &edits);
            let result = State::decode(damaged.as_bytes());
            tally.count(&result);
            Ok(())
        })
        .unwrap();
    tally.record("state files", "arbitrary states written and read back; a written state damaged as text");
}

#[test]
fn manifests_round_trip_and_damaged_ones_are_refused() {
    let manifest = serde_json::json!({
        "version": 1, "job": "photos", "kind": "s3", "run_id": "r", "source": "s3://a/", "target": "s3://b/",
        "scheduled_at": "2026-11-22T07:00:00Z", "started_at": "2026-11-22T07:00:01Z",
        "finished_at": "2026-11-22T07:01:00Z", "status": "succeeded",
        "counts": {"tasks": 1, "copied": 1, "bytes_copied": 3, "tagged_deleted": 0, "skipped": 0, "failed": 0},
        "tasks": [{"action": "copy", "key": "a", "target_key": "b/a", "status": "ok", "bytes": 3, "etag": "\"e\""}]
    });
    let text = manifest.to_string();
    let read: Manifest = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap()["tasks"], manifest["tasks"]);
    let tally = Tally::default();
    runner()
        .run(&prop::collection::vec(edit(), 1..4), |edits| {
            tally.count(&serde_json::from_str::<Manifest>(&apply(&text, &edits)));
            Ok(())
        })
        .unwrap();
    tally.record("manifests", "a manifest damaged as text and read back");
}

#[test]
fn tableau_responses_are_read_or_refused() {
    use backline::sources::tableau::xml;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/tableau");
    let mut responses: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    responses.sort();
    assert!(responses.len() >= 10, "fixtures missing in {}", dir.display());
    let tally = Tally::default();
    runner()
        .run(&(0..responses.len(), prop::collection::vec(edit(), 1..4)), |(i, edits)| {
            let text = apply(&responses[i], &edits);
            tally.count(&xml::workbooks(&text));
            tally.count(&xml::sites(&text));
            tally.count(&xml::projects(&text));
            tally.count(&xml::pagination(&text));
            tally.count(&xml::credentials(&text));
            tally.count(&xml::job(&text));
            tally.count(&xml::upload_session(&text));
            tally.count(&xml::users(&text));
            tally.count(&xml::revisions(&text));
            tally.count(&xml::api_version(&text));
            let _ = xml::api_error(&text);
            Ok(())
        })
        .unwrap();
    tally.record(
        "Tableau REST responses",
        "the real responses of shared/fixtures/tableau, damaged, through every reader",
    );
}

#[test]
fn restore_keys_that_escape_the_folder_are_refused() {
    use backline::sources::filesystem::restore::destination;
    let hostile = prop_oneof![
        Just("../etc/passwd".to_string()),
        Just("/etc/passwd".to_string()),
        Just("a/\u{0}/b".to_string()),
        "(\\.\\./|/|\\./|[a-z]{1,3}/|\u{0}){1,6}[a-z.]{0,4}",
        "[ -~]{0,20}",
    ];
    let tally = Tally::default();
    runner()
        .run(&(hostile, proptest::option::of(Just("/restore/here"))), |(key, to_dir)| {
            let result = destination(to_dir, &key);
            tally.count(&result);
            if let Ok(path) = &result {
                let root = std::path::Path::new(to_dir.unwrap_or("/"));
                prop_assert!(path.starts_with(root), "{key:?} -> {}", path.display());
                prop_assert!(
                    path.components().all(|c| !matches!(c, std::path::Component::ParentDir)),
                    "{key:?} -> {}",
                    path.display()
                );
                prop_assert!(!key.contains('\u{0}'), "a key with NUL was accepted: {key:?}");
            }
            Ok(())
        })
        .unwrap();
    tally.record("restore keys (../, absolute, NUL)", "folder restores; S3 keys are not paths and restore as keys");
}

/// A server that answers every request with the body of the case under way: a QuickSight
/// endpoint whose answers are damaged.
async fn canned_server(body: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Reads the head and as much body as it announces, then answers and closes.
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                let body = body.lock().unwrap().clone();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

/// Every list Backline reads, in one answer: whichever call is made finds its own list.
fn quicksight_answer(next_token: Option<&str>) -> Value {
    let arn = |kind: &str, id: &str| format!("arn:aws:quicksight:eu-west-1:111111111111:{kind}/{id}");
    serde_json::json!({
        "Status": 200, "RequestId": "r-1", "NextToken": next_token,
        "UserList": [{"Arn": arn("user/default", "alice"), "UserName": "alice", "Email": "a@example.com",
                      "Role": "ADMIN", "IdentityType": "QUICKSIGHT", "Active": true, "PrincipalId": "p-1"}],
        "GroupList": [{"Arn": arn("group/default", "analysts"), "GroupName": "analysts",
                       "Description": "Analysts", "PrincipalId": "g-1"}],
        "GroupMemberList": [{"Arn": arn("user/default", "alice"), "MemberName": "alice"}],
        "DataSources": [{"Arn": arn("datasource", "athena"), "DataSourceId": "athena", "Name": "Athena",
                         "Type": "ATHENA", "CreatedTime": 1.7e9, "LastUpdatedTime": 1.7e9}],
        "DataSetSummaries": [{"Arn": arn("dataset", "sales"), "DataSetId": "sales", "Name": "Sales",
                              "CreatedTime": 1.7e9, "LastUpdatedTime": 1.7e9, "ImportMode": "SPICE"}],
        "AnalysisSummaryList": [{"Arn": arn("analysis", "a"), "AnalysisId": "a", "Name": "A",
                                 "Status": "CREATION_SUCCESSFUL", "CreatedTime": 1.7e9}],
        "DashboardSummaryList": [{"Arn": arn("dashboard", "d"), "DashboardId": "d", "Name": "D",
                                  "CreatedTime": 1.7e9, "PublishedVersionNumber": 1}]
    })
}

#[test]
fn quicksight_responses_are_read_or_refused() {
    use backline::sources::quicksight::AssetType;
    use backline::sources::quicksight::QuickSight;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let url = runtime.block_on(canned_server(body.clone()));
    let mut clients = runtime.block_on(backline_tests::Moto::get().clients());
    clients.quicksight_endpoint = Some(url);
    let quicksight = QuickSight::new(&clients, "111111111111", "eu-west-1");
    let answers = [quicksight_answer(None), quicksight_answer(Some("page-2"))];
    let tally = Tally::default();
    let cases = (0..answers.len(), prop::collection::vec(value_edit(), 0..3), prop::collection::vec(edit(), 0..3));
    runner()
        .run(&cases, |(i, value_edits, text_edits)| {
            let mut answer = answers[i].clone();
            value_edits.iter().for_each(|e| {
                apply_value(&mut answer, e);
            });
            *body.lock().unwrap() = apply(&answer.to_string(), &text_edits);
            runtime.block_on(async {
                // An answer must end in a result: a page that names itself as the next one
                // must not keep Backline asking forever.
                let limit = std::time::Duration::from_secs(20);
                let users = tokio::time::timeout(limit, quicksight.users("default")).await;
                tally.count(&users.expect("listing users never finished"));
                let groups = tokio::time::timeout(limit, quicksight.groups("default")).await;
                tally.count(&groups.expect("listing groups never finished"));
                for kind in AssetType::ALL {
                    let listed = tokio::time::timeout(limit, quicksight.assets(kind)).await;
                    tally.count(&listed.unwrap_or_else(|_| panic!("listing {} never finished", kind.as_str())));
                }
            });
            Ok(())
        })
        .unwrap();
    tally.record(
        "QuickSight API responses",
        "every list answer Backline reads (users, groups, members, assets), damaged, through its client",
    );
}

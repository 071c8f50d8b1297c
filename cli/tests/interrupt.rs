//! `backline run` stopped from outside: Ctrl-C stops cleanly, and what a killed run left open
//! the next run removes.

use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use backline_tests::{Moto, TestObject, keys, open_uploads, put, source_and_target, unique};

fn command(args: &[&str]) -> Command {
    backline_tests::backline_command(env!("CARGO_BIN_EXE_backline"), args)
}

fn job_file(source: &str, target: &str, extra: &str) -> String {
    let dir = std::env::temp_dir().join(unique("interrupt"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jobs.toml");
    let text = format!(
        "[[jobs]]\nname = \"photos\"\nkind = \"s3\"\n{extra}\n[jobs.source]\nbucket = \"{source}\"\n\
         [jobs.target]\nbucket = \"{target}\"\nprefix = \"backup/\"\nmultipart_threshold = \"5 MiB\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn uploads_a_killed_run_left_open_are_aborted_by_the_next_run_and_others_are_kept() {
    let clients = Moto::get().clients().await;
    let s3 = &clients.s3;
    let (source, target) = source_and_target(s3).await;
    put(s3, &source, &TestObject::new("a.jpg", "a")).await;
    // What a SIGKILL leaves: an upload with a part under the job's target prefix, and one
    // outside it that belongs to somebody else.
    for key in ["backup/half.bin", "other/theirs.bin"] {
        let upload = s3.create_multipart_upload().bucket(&target).key(key).send().await.unwrap();
        let id = upload.upload_id().unwrap();
        let part = ByteStream::from(vec![7u8; 5 << 20]);
        s3.upload_part().bucket(&target).key(key).upload_id(id).part_number(1).body(part).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let output = command(&["run", "--config", &job_file(&source, &target, ""), "--no-progress"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(open_uploads(s3, &target).await, vec!["other/theirs.bin".to_string()]);
}

#[tokio::test]
async fn ctrl_c_aborts_open_uploads_records_the_run_as_interrupted_and_exits_130() {
    let clients = Moto::get().clients().await;
    let s3 = &clients.s3;
    let (source, target) = source_and_target(s3).await;
    // Enough multipart copies, one at a time, that the run is still copying when Ctrl-C comes.
    for i in 0..30 {
        put(s3, &source, &TestObject::new(format!("big-{i:02}.bin"), vec![i as u8; 6 << 20])).await;
    }
    let file = job_file(&source, &target, "concurrency = 1");
    let child = command(&["run", "--config", &file, "--no-progress"]).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    // Wait for the first copies to land, then interrupt.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while keys(s3, &target, "backup/").await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the run copied nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: kill only sends a signal to the child we started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let copied = keys(s3, &target, "backup/").await;
    assert!(copied.len() < 30, "the run should have been stopped part way: {}", copied.len());
    assert!(open_uploads(s3, &target).await.is_empty(), "uploads left open after Ctrl-C");
    let records = keys(s3, &target, "_backline/runs/photos/").await;
    assert!(records.iter().any(|k| k.ends_with("/interrupted.json")), "{records:?}");

    // The next run copies the rest and finishes.
    let output = command(&["run", "--config", &file, "--no-progress"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(keys(s3, &target, "backup/").await.len(), 30);
    assert!(open_uploads(s3, &target).await.is_empty());
}

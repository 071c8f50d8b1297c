//! The `quicksight` kind through the three Lambda handlers: exports wait in the queue between
//! looks (no handler sleeps), and a restore request imports the day through them too.

use backline::model::Status;
use backline::store::ControlStore;
use backline_tests::quicksight::QuickSightServer;
use backline_tests::{create_bucket, unique};
use serde_json::json;

mod handlers;
use handlers::{drive, plan, stack_with_clients};

#[tokio::test]
async fn a_backup_and_a_restore_run_through_the_handlers() {
    let world = json!({
        "settings": {"page_size": 2},
        "accounts": {
            "111111111111": {
                "users": [{"name": "alice", "identity_type": "QUICKSIGHT", "role": "AUTHOR"},
                          {"name": "bob", "identity_type": "QUICKSIGHT"}],
                "groups": [{"name": "analysts"}],
                "memberships": [{"group": "analysts", "member": "alice"}],
                "regions": {"us-east-1": {
                    "datasources": [{"id": "athena"}],
                    "datasets": [{"id": "sales", "deps": ["athena"]}],
                    "analyses": [{"id": "a1", "deps": ["sales"]}],
                    "dashboards": {"generate": 120, "deps": ["a1"]}}}
            },
            "222222222222": {}
        }
    });
    let server = QuickSightServer::start(&world).await;
    let bucket = unique("qs-lambda");
    let users = unique("qs-users");
    let config = std::env::temp_dir().join(format!("{}.yaml", unique("qs-jobs")));
    let text = format!(
        "jobs:\n  - name: qs\n    kind: quicksight\n    source: {{account_id: \"111111111111\", region: us-east-1}}\n    target: {{bucket: {bucket}, users_table: {users}, groups_table: {users}-g, memberships_table: {users}-m}}\n    poll_interval: 1s\n"
    );
    std::fs::write(&config, text).unwrap();
    let stack = stack_with_clients(&config.display().to_string(), server.clients().await).await;
    create_bucket(&stack.clients.s3, &bucket).await;
    let planned = plan(&stack, json!({"job": "qs", "time": "2026-11-23T03:00:00Z"})).await;
    assert_eq!(planned["runs"][0]["chunks"], 1, "{planned}");

    let mut rounds = 0;
    while drive(&stack).await == 0 {
        rounds += 1;
        assert!(rounds <= 30, "the backup did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    assert!(rounds >= 2, "the exports were looked at again through the queue");
    let control = backline::config::ControlLocation {
        bucket: backline::config::BucketName::try_from(bucket.clone()).unwrap(),
        prefix: "_backline/".into(),
    };
    let store = ControlStore::new(stack.clients.s3.clone(), &control);
    let manifest = store.manifest("qs", "qs-20261123T030000Z").await.unwrap().expect("a manifest");
    let failed: Vec<_> = manifest.tasks.iter().filter(|o| o.status == Status::Failed).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // 2 users, 1 group, 1 membership; 120 dashboards in 3 bundles and one bundle per other type.
    assert_eq!(manifest.counts.copied, 4 + 6, "{:#?}", manifest.tasks);
    let stored = backline_tests::keys(&stack.clients.s3, &bucket, "quicksight-backups/2026/11/23/dashboards/").await;
    assert_eq!(stored.len(), 3, "{stored:?}");

    // QuickSight reads the S3 URI with the caller's access; the emulator reads moto unsigned.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
    stack.clients.s3.put_bucket_policy().bucket(&bucket).policy(policy.to_string()).send().await.expect("policy");
    let request = json!({"restore": {"job": "qs", "date": "2026-11-23", "to_account": "222222222222",
                                     "poll_interval": "1s"}, "time": "2026-11-23T09:00:00Z"});
    plan(&stack, request).await;
    let mut rounds = 0;
    while drive(&stack).await == 0 {
        rounds += 1;
        assert!(rounds <= 30, "the restore did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let state = server.state().await;
    let restored = &state["accounts"]["222222222222"];
    assert_eq!(restored["regions"]["us-east-1"]["dashboards"].as_array().unwrap().len(), 120);
    assert_eq!(restored["namespaces"]["default"]["users"].as_array().unwrap().len(), 2);
    assert_eq!(restored["namespaces"]["default"]["memberships"].as_array().unwrap().len(), 1);
}

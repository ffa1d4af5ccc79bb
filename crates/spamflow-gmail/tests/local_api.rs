//! The client against the real local Gmail API (`gmail-api-local`): typed results, label
//! management, history, the typed 404 error, watch and retries.

use std::path::Path;

use spamflow_gmail::{GmailArgs, GmailError, GmailPool};
use spamflow_testkit::{GmailApi, GmailApiOptions};

const MAILBOX: &str = "me@example.com";

fn message(index: usize) -> String {
    format!(
        "From: sender{index}@example.net\r\nTo: {MAILBOX}\r\nSubject: Note {index}\r\n\
         Date: Tue, 0{index} Dec 2026 10:00:00 +0000\r\nMessage-ID: <note-{index}@example.net>\r\n\
         \r\nThis is note number {index} about the quarterly report.\r\n"
    )
}

/// Starts the local Gmail API over a mailbox of five messages in INBOX and one in SPAM.
fn start(dir: &Path) -> GmailApi {
    let mailbox = dir.join("mailbox");
    std::fs::create_dir_all(mailbox.join("SPAM")).unwrap();
    for index in 1..=5 {
        std::fs::write(mailbox.join(format!("note-{index}.eml")), message(index)).unwrap();
    }
    std::fs::write(mailbox.join("SPAM/old.eml"), message(9)).unwrap();
    let options = GmailApiOptions {
        email: Some(MAILBOX.to_owned()),
        ..GmailApiOptions::default()
    };
    GmailApi::start_with(&mailbox, &options).unwrap()
}

/// Service-account settings for the local Gmail API: the key's token_uri is its `/token`.
fn args(api: &GmailApi, dir: &Path) -> GmailArgs {
    let path = api
        .write_service_account_key(&dir.join("service-account.json"))
        .unwrap();
    let mut args = GmailArgs::for_api(&api.base_url(), path);
    args.mailboxes = vec![MAILBOX.to_owned()];
    args.retry_base_ms = 10;
    args.retry_max_ms = 50;
    args
}

#[tokio::test]
async fn reads_profile_listing_and_raw_messages() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let pool = GmailPool::connect(&args(&api, dir.path())).await.unwrap();
    let gmail = pool.get("ME@example.com").unwrap();

    let profile = gmail.profile().await.unwrap();
    assert_eq!(profile.email_address, MAILBOX);
    assert!(profile.history_id > 0);

    let inbox = vec!["INBOX".to_owned()];
    let all = gmail.list_message_ids(None, &inbox, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    let newest_three = gmail.list_message_ids(None, &inbox, 3).await.unwrap();
    assert_eq!(newest_three, all[..3].to_vec());

    let newest = gmail.get_raw(&all[0]).await.unwrap();
    assert_eq!(newest.raw, message(5).into_bytes());
    assert!(newest.label_ids.contains(&"INBOX".to_owned()));
    assert!(!newest.thread_id.is_empty());
    let oldest = gmail.get_raw(&all[4]).await.unwrap();
    assert!(newest.internal_date_ms > oldest.internal_date_ms);

    let spam = gmail
        .list_message_ids(None, &["SPAM".to_owned()], 10)
        .await
        .unwrap();
    assert_eq!(spam.len(), 1);
}

#[tokio::test]
async fn labels_modify_and_history_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let pool = GmailPool::connect(&args(&api, dir.path())).await.unwrap();
    let gmail = pool.get(MAILBOX).unwrap();
    let start = gmail.profile().await.unwrap().history_id;
    let id = gmail
        .list_message_ids(None, &["INBOX".to_owned()], 1)
        .await
        .unwrap()
        .remove(0);

    let label = gmail.ensure_label("spamflow/suspected").await.unwrap();
    assert_eq!(
        gmail.ensure_label("SPAMFLOW/Suspected").await.unwrap(),
        label
    );
    assert_eq!(api.requests().unwrap()["labels.create"].as_u64(), Some(1));
    assert!(
        gmail
            .labels()
            .await
            .unwrap()
            .iter()
            .any(|info| info.id == label)
    );

    let labels = gmail
        .modify(&id, &[label.as_str(), "SPAM"], &["INBOX"])
        .await
        .unwrap();
    assert!(labels.contains(&"SPAM".to_owned()), "{labels:?}");
    assert!(labels.contains(&label), "{labels:?}");
    assert!(!labels.contains(&"INBOX".to_owned()), "{labels:?}");
    assert_eq!(gmail.get_labels(&id).await.unwrap(), labels);

    let history = gmail.history(start).await.unwrap();
    assert!(history.history_id > start);
    let added: Vec<_> = history
        .records
        .iter()
        .flat_map(|record| &record.labels_added)
        .filter(|change| change.message.id == id)
        .flat_map(|change| change.label_ids.clone())
        .collect();
    assert!(added.contains(&"SPAM".to_owned()), "{history:?}");
    let removed: Vec<_> = history
        .records
        .iter()
        .flat_map(|record| &record.labels_removed)
        .flat_map(|change| change.label_ids.clone())
        .collect();
    assert_eq!(removed, vec!["INBOX".to_owned()]);
}

#[tokio::test]
async fn expired_history_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let pool = GmailPool::connect(&args(&api, dir.path())).await.unwrap();
    let gmail = pool.get(MAILBOX).unwrap();
    let start = gmail.profile().await.unwrap().history_id;

    api.set_faults(serde_json::json!({"history_404": true}))
        .unwrap();
    let error = gmail.history(start).await.unwrap_err();
    assert!(
        matches!(error, GmailError::HistoryExpired { start_history_id } if start_history_id == start),
        "{error:?}"
    );
    // A 404 is final: one call, no retries.
    assert_eq!(api.requests().unwrap()["history.list"].as_u64(), Some(1));
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let mut args = args(&api, dir.path());
    args.max_attempts = 3;
    let pool = GmailPool::connect(&args).await.unwrap();
    let gmail = pool.get(MAILBOX).unwrap();

    api.set_faults(serde_json::json!({"status_429": 2}))
        .unwrap();
    assert_eq!(gmail.profile().await.unwrap().email_address, MAILBOX);
    assert_eq!(
        api.requests().unwrap()["users.getProfile"].as_u64(),
        Some(3)
    );

    api.set_faults(serde_json::json!({"status_500": 5}))
        .unwrap();
    let error = gmail.profile().await.unwrap_err();
    assert!(
        matches!(error, GmailError::RetriesExhausted { attempts: 3, .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(500));
    assert_eq!(
        api.requests().unwrap()["users.getProfile"].as_u64(),
        Some(6)
    );
}

#[tokio::test]
async fn bad_query_is_rejected_naming_the_term() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let pool = GmailPool::connect(&args(&api, dir.path())).await.unwrap();
    let gmail = pool.get(MAILBOX).unwrap();
    let error = gmail
        .list_message_ids(Some("frobnicate:yes"), &[], 10)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(400), "{error}");
    assert!(error.to_string().contains("frobnicate"), "{error}");
}

#[tokio::test]
async fn watch_returns_expiry_and_stop_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let pool = GmailPool::connect(&args(&api, dir.path())).await.unwrap();
    let gmail = pool.get(MAILBOX).unwrap();
    let watch = gmail
        .watch("projects/local/topics/gmail", &["INBOX".to_owned()])
        .await
        .unwrap();
    assert!(watch.history_id > 0);
    assert!(watch.expiration_ms > 0);
    gmail.stop().await.unwrap();
}

#[tokio::test]
async fn service_account_needs_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let api = start(dir.path());
    let mut args = args(&api, dir.path());
    args.mailboxes.clear();
    let error = GmailPool::connect(&args).await.unwrap_err();
    assert!(error.to_string().contains("--gmail-mailboxes"), "{error}");
}

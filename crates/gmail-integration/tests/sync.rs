//! `gmail-integration` against the real local Gmail API, Redis and the tansu broker: full and
//! incremental sync, restart from the checkpoint, expired history, injected faults, push
//! notifications and user feedback.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Harness, MAILBOX, Setup, WAIT};
use prost::Message as _;
use spamflow_proto::v1 as pb;
use spamflow_runtime::store::own_label_change_key;
use spamflow_testkit::{eventually, http_request};

const NEW_MESSAGE: &[u8] = b"From: Carol <carol@example.net>\r\nTo: me@example.com\r\n\
Subject: Lunch on Friday\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <lunch-1@example.net>\r\n\r\nAre we still on for lunch on Friday at noon?\r\n";

/// Asserts that `records` hold each key of `expected` exactly once and nothing else.
fn assert_each_once(records: &[common::Record], expected: &HashSet<String>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for record in records {
        *counts.entry(record.key.as_str()).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        duplicates.is_empty(),
        "published more than once: {duplicates:?}"
    );
    let published: HashSet<String> = counts.keys().map(|key| (*key).to_owned()).collect();
    let missing: Vec<_> = expected.difference(&published).collect();
    assert!(missing.is_empty(), "never published: {missing:?}");
    let unexpected: Vec<_> = published.difference(expected).collect();
    assert!(
        unexpected.is_empty(),
        "published but not expected: {unexpected:?}"
    );
}

fn inbox_keys(harness: &Harness) -> HashSet<String> {
    harness.inbox.keys().map(|id| Harness::key(id)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_then_incremental_sync_publishes_each_once() {
    let harness = Harness::start(Setup {
        ham: 25,
        spam: 15,
        in_spam_folder: 3,
        ..Setup::default()
    })
    .await;
    let credentials = harness.service_account_file();
    let mut command = harness.command(&credentials);
    command.env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX);
    let mut service = harness.spawn(command);

    let first = harness.wait_for_checkpoint(0).await;
    let records = harness.read_topic(&harness.topics.raw);
    assert_each_once(&records, &inbox_keys(&harness));
    for (record, event) in records.iter().zip(Harness::email_events(&records)) {
        assert_eq!(record.key, Harness::key(&event.message_id));
        assert_eq!(event.mailbox, MAILBOX);
        assert_eq!(event.source, "gmail");
        assert_eq!(event.gmail_thread_id, event.message_id);
        assert!(
            event.gmail_label_ids.contains(&"INBOX".to_owned()),
            "{:?}",
            event.gmail_label_ids
        );
        assert!(event.internal_date_ms > 0, "{}", event.internal_date_ms);
        assert_eq!(
            &event.raw, &harness.inbox[&event.message_id],
            "raw of {}",
            event.message_id
        );
    }

    let new_id = harness.gmail.deliver(NEW_MESSAGE, None, &[]).unwrap();
    harness.wait_for_checkpoint(first + 1).await;
    let records = harness.read_topic(&harness.topics.raw);
    let mut expected = inbox_keys(&harness);
    expected.insert(Harness::key(&new_id));
    assert_each_once(&records, &expected);
    let last = Harness::email_events(&records).pop().unwrap();
    assert_eq!(last.message_id, new_id);
    assert_eq!(last.raw, NEW_MESSAGE);

    let (status, body) = spamflow_testkit::http_get(harness.http_port, "/healthz").unwrap();
    assert_eq!(status, 200, "{body}");

    let status = service.terminate(Duration::from_secs(30)).unwrap();
    assert!(
        status.success(),
        "gmail-integration exited with {status} on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_kill_loses_and_repeats_nothing() {
    let harness = Harness::start(Setup {
        ham: 90,
        spam: 60,
        ..Setup::default()
    })
    .await;
    let credentials = harness.service_account_file();
    // Slow responses keep the full sync running long enough to kill it halfway.
    harness
        .gmail
        .set_faults(serde_json::json!({"delay_ms": 100}))
        .unwrap();
    let start = |harness: &Harness| {
        let mut command = harness.command(&credentials);
        command
            .env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX)
            .env("SPAMFLOW_GMAIL_FETCH_CONCURRENCY", "1");
        harness.spawn(command)
    };

    let mut service = start(&harness);
    harness.wait_for_records(&harness.topics.raw, 10);
    service.kill();
    let published_before_restart = harness.read_topic(&harness.topics.raw).len();
    assert!(
        published_before_restart < harness.inbox.len(),
        "the sync finished before the kill ({published_before_restart} records)"
    );
    assert_eq!(
        harness.checkpoint().await,
        None,
        "checkpoint stored before the sync ended"
    );

    harness.gmail.set_faults(serde_json::json!({})).unwrap();
    let new_id = harness.gmail.deliver(NEW_MESSAGE, None, &[]).unwrap();
    let _service = start(&harness);
    harness.wait_for_checkpoint(0).await;
    let mut expected = inbox_keys(&harness);
    expected.insert(Harness::key(&new_id));
    assert_each_once(&harness.read_topic(&harness.topics.raw), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_history_runs_full_sync_once() {
    let harness = Harness::start(Setup {
        ham: 10,
        spam: 5,
        ..Setup::default()
    })
    .await;
    let credentials = harness.service_account_file();
    let mut command = harness.command(&credentials);
    command.env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX);
    let _service = harness.spawn(command);
    let first = harness.wait_for_checkpoint(0).await;
    let lists_before = harness.gmail.requests().unwrap()["messages.list"]
        .as_u64()
        .unwrap();

    harness
        .gmail
        .set_faults(serde_json::json!({"history_404": true}))
        .unwrap();
    let new_id = harness.gmail.deliver(NEW_MESSAGE, None, &[]).unwrap();
    harness.wait_for_checkpoint(first + 1).await;
    harness.gmail.set_faults(serde_json::json!({})).unwrap();

    let mut expected = inbox_keys(&harness);
    expected.insert(Harness::key(&new_id));
    assert_each_once(&harness.read_topic(&harness.topics.raw), &expected);
    let lists_after = harness.gmail.requests().unwrap()["messages.list"]
        .as_u64()
        .unwrap();
    assert!(
        lists_after > lists_before,
        "no second messages.list after the 404 ({lists_before} -> {lists_after})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried() {
    let harness = Harness::start(Setup {
        ham: 6,
        spam: 4,
        ..Setup::default()
    })
    .await;
    harness
        .gmail
        .set_faults(serde_json::json!({"status_429": 3, "status_500": 2}))
        .unwrap();
    let credentials = harness.service_account_file();
    let mut command = harness.command(&credentials);
    // One sync only: the next poll is ten minutes away.
    command
        .env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX)
        .env("SPAMFLOW_GMAIL_POLL_INTERVAL_MS", "600000");
    let _service = harness.spawn(command);
    harness.wait_for_checkpoint(0).await;

    assert_each_once(
        &harness.read_topic(&harness.topics.raw),
        &inbox_keys(&harness),
    );
    let requests = harness.gmail.requests().unwrap();
    let count = |method: &str| requests[method].as_u64().unwrap_or(0);
    // getProfile, one messages.list page and one messages.get per message succeed; the five
    // injected failures each cost one more call.
    let succeeded = 1 + 1 + harness.inbox.len() as u64;
    let total: u64 = requests
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(total, succeeded + 5, "{requests}");
    assert!(
        count("messages.get") >= harness.inbox.len() as u64,
        "{requests}"
    );

    // The service counts the same calls in its metrics.
    let (_, metrics) = spamflow_testkit::http_get(harness.http_port, "/metrics").unwrap();
    let calls = |outcome: &str| -> u64 {
        metrics
            .lines()
            .filter(|line| line.starts_with("spamflow_gmail_calls_total{"))
            .filter(|line| line.contains(&format!("outcome=\"{outcome}\"")))
            .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(calls("retried"), 5, "{metrics}");
    assert_eq!(calls("ok"), succeeded, "{metrics}");
    assert_eq!(calls("failed"), 0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_refresh_after_expiry() {
    let harness = Harness::start(Setup {
        ham: 3,
        spam: 2,
        ..Setup::default()
    })
    .await;
    // Tokens live one second, so every call after the first sync needs a new one.
    harness
        .gmail
        .set_faults(serde_json::json!({"token_expires_in": 1}))
        .unwrap();
    let credentials = harness.service_account_file();
    let mut command = harness.command(&credentials);
    command.env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX);
    let _service = harness.spawn(command);
    let first = harness.wait_for_checkpoint(0).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let new_id = harness.gmail.deliver(NEW_MESSAGE, None, &[]).unwrap();
    harness.wait_for_checkpoint(first + 1).await;
    let mut expected = inbox_keys(&harness);
    expected.insert(Harness::key(&new_id));
    assert_each_once(&harness.read_topic(&harness.topics.raw), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_app_signs_in_and_refreshes_token() {
    let harness = Harness::start(Setup {
        ham: 3,
        spam: 2,
        ..Setup::default()
    })
    .await;
    harness
        .gmail
        .set_faults(serde_json::json!({"token_expires_in": 1}))
        .unwrap();
    let credentials = harness.installed_client_file();
    let token_file = harness.dir.path().join("tokens/token.json");

    // The sign-in prints the consent URL; the local Gmail API approves it and redirects to
    // the loopback port the sign-in listens on.
    let redirect_port = spamflow_testkit::free_port().unwrap();
    let mut auth = harness.command(&credentials);
    auth.arg("auth")
        .arg("--redirect-port")
        .arg(redirect_port.to_string())
        .env("SPAMFLOW_GMAIL_TOKEN_FILE", &token_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = auth.spawn().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut url).unwrap();
    let path = url
        .trim()
        .strip_prefix(&harness.gmail.base_url())
        .unwrap_or_else(|| panic!("consent URL {url:?} is not on the local Gmail API"));
    let consent =
        spamflow_testkit::http_send(harness.gmail.port, "GET", &format!("/{path}"), &[], &[])
            .unwrap();
    let location = consent
        .header("location")
        .unwrap_or_else(|| panic!("{consent:?}"))
        .to_owned();
    let callback = location
        .strip_prefix(&format!("http://localhost:{redirect_port}"))
        .unwrap_or_else(|| panic!("redirect {location} is not to the sign-in's port"));
    let callback = if callback.starts_with('/') {
        callback.to_owned()
    } else {
        format!("/{callback}")
    };
    spamflow_testkit::http_send(redirect_port, "GET", &callback, &[], &[]).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "auth failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(MAILBOX), "{stderr}");
    assert!(!stderr.contains("test-client-secret"), "{stderr}");

    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode {mode:o}");
    let signed_in = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        signed_in.contains("refresh_token"),
        "no refresh token cached"
    );

    let mut command = harness.command(&credentials);
    // Every level of every crate, to check that no secret reaches the log even at DEBUG.
    command
        .env("SPAMFLOW_GMAIL_TOKEN_FILE", &token_file)
        .env("RUST_LOG", "debug");
    let service = harness.spawn(command);
    let first = harness.wait_for_checkpoint(0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let new_id = harness.gmail.deliver(NEW_MESSAGE, None, &[]).unwrap();
    harness.wait_for_checkpoint(first + 1).await;

    let mut expected = inbox_keys(&harness);
    expected.insert(Harness::key(&new_id));
    assert_each_once(&harness.read_topic(&harness.topics.raw), &expected);
    // The service replaces the cache by renaming a complete file over it, so every read gets
    // valid JSON: the old cache until the refreshed one is in place.
    let (refreshed, cache) = eventually(WAIT, "a refreshed token cache", || {
        let text = std::fs::read_to_string(&token_file)?;
        let cache: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| anyhow::anyhow!("the token cache was read half written: {error}"))?;
        Ok((text != signed_in).then_some((text, cache)))
    })
    .unwrap();
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode {mode:o} after refresh");

    let log = service.log();
    assert!(
        log.contains("Mailbox synced"),
        "the service log is empty or elsewhere"
    );
    let mut secrets = vec!["test-client-secret".to_owned(), MAILBOX.to_owned()];
    for entry in cache.as_array().unwrap() {
        for field in ["access_token", "refresh_token"] {
            if let Some(value) = entry["token"][field].as_str() {
                secrets.push(value.to_owned());
            }
        }
    }
    assert!(
        secrets.len() >= 4,
        "unexpected token cache layout: {refreshed}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log contains {secret:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_notification_triggers_sync() {
    let token = "push-secret-0123";
    let harness = Harness::start(Setup {
        ham: 3,
        spam: 2,
        push_token: Some(token.to_owned()),
        ..Setup::default()
    })
    .await;
    let credentials = harness.service_account_file();
    let mut command = harness.command(&credentials);
    // Polling every ten minutes: only a push can make the new message appear in time.
    command
        .env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX)
        .env("SPAMFLOW_GMAIL_POLL_INTERVAL_MS", "600000")
        .env("SPAMFLOW_GMAIL_PUBSUB_TOPIC", "projects/local/topics/gmail")
        .env("SPAMFLOW_GMAIL_PUSH_TOKEN", token);
    let _service = harness.spawn(command);
    harness.wait_for_checkpoint(0).await;
    assert_eq!(
        harness.gmail.requests().unwrap()["users.watch"].as_u64(),
        Some(1)
    );

    let new_id = harness.gmail.deliver(NEW_MESSAGE, None, &[]).unwrap();
    let records = eventually(WAIT, "the pushed message", || {
        let records = harness.read_topic(&harness.topics.raw);
        Ok(records
            .iter()
            .any(|record| record.key == Harness::key(&new_id))
            .then_some(records))
    })
    .unwrap();
    let mut expected = inbox_keys(&harness);
    expected.insert(Harness::key(&new_id));
    assert_each_once(&records, &expected);

    let envelope = br#"{"message":{"data":"e30="}}"#;
    for path in ["/gmail/push?token=wrong", "/gmail/push"] {
        let (status, _) = http_request(
            harness.http_port,
            "POST",
            path,
            Some("application/json"),
            envelope,
        )
        .unwrap();
        assert_eq!(status, 403, "{path}");
    }
    let (status, body) = http_request(
        harness.http_port,
        "POST",
        &format!("/gmail/push?token={token}"),
        Some("application/json"),
        b"{}",
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_spam_moves_yield_one_feedback_each() {
    let harness = Harness::start(Setup {
        ham: 3,
        spam: 3,
        ..Setup::default()
    })
    .await;
    let credentials = harness.service_account_file();
    let mut command = harness.command(&credentials);
    command.env("SPAMFLOW_GMAIL_MAILBOXES", MAILBOX);
    let _service = harness.spawn(command);
    harness.wait_for_checkpoint(0).await;

    let mut ids: Vec<&String> = harness.inbox.keys().collect();
    ids.sort();
    let (own_id, user_id) = (ids[0].as_str(), ids[1].as_str());

    // The action handler's move: marker first, then the change.
    let marker = own_label_change_key(MAILBOX, own_id, "SPAM", true);
    harness
        .store
        .set_value(&marker, "1", Some(Duration::from_secs(600)))
        .await
        .unwrap();
    harness
        .gmail
        .user_modify(MAILBOX, own_id, &["SPAM"], &["INBOX"])
        .unwrap();
    // The user's move, after it in the history.
    harness
        .gmail
        .user_modify(MAILBOX, user_id, &["SPAM"], &["INBOX"])
        .unwrap();

    let records = harness.wait_for_records(&harness.topics.feedback, 1);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].key, Harness::key(user_id));
    let event = pb::FeedbackEvent::decode(records[0].payload.as_slice()).unwrap();
    assert_eq!(event.mailbox, MAILBOX);
    assert_eq!(event.message_id, user_id);
    assert_eq!(event.label, pb::Label::Spam as i32);
    assert_eq!(&event.raw, &harness.inbox[user_id]);
    assert!(!event.fingerprints.is_empty());
    assert_eq!(
        harness.store.value(&marker).await.unwrap(),
        None,
        "marker not consumed"
    );

    // Moving it back is one HAM feedback; the message is not published to the raw topic again.
    harness
        .gmail
        .user_modify(MAILBOX, user_id, &["INBOX"], &["SPAM"])
        .unwrap();
    let records = harness.wait_for_records(&harness.topics.feedback, 2);
    assert_eq!(records.len(), 2, "{records:?}");
    let event = pb::FeedbackEvent::decode(records[1].payload.as_slice()).unwrap();
    assert_eq!(event.message_id, user_id);
    assert_eq!(event.label, pb::Label::Ham as i32);
    let checkpoint = harness.wait_for_checkpoint(harness.history_id()).await;
    assert!(checkpoint >= harness.history_id());
    assert_eq!(harness.read_topic(&harness.topics.feedback).len(), 2);
    assert_each_once(
        &harness.read_topic(&harness.topics.raw),
        &inbox_keys(&harness),
    );
}

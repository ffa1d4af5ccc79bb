//! The action-handler binary acting on the local Gmail API (`gmail-api-local`), with real
//! Redis and the real Kafka-compatible broker tansu. Each test publishes verdicts to the
//! verdicts topic and checks the mailbox through the local API's `/control/` endpoints.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use action_handler::action_key;
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::{KafkaArgs, ensure_topics, record_key};
use spamflow_runtime::store::{Store, own_label_change_key};
use spamflow_testkit::{
    ChildGuard, GmailApi, Kafka, Redis, ScratchDir, eventually, free_port, http_get, wait_for_port,
    workspace_binary,
};

/// The default mailbox of the local Gmail API.
const MAILBOX: &str = "me@example.com";
/// A second mailbox, served from the subfolder of that name.
const OTHER_MAILBOX: &str = "other@example.com";
/// How long a test waits for the handler to catch up.
const WAIT: Duration = Duration::from_secs(60);

/// A message the tests put in the mailbox folder: (relative path, subject).
const MESSAGES: [(&str, &str); 7] = [
    ("a.eml", "Cheap meds"),
    ("b.eml", "Meeting notes"),
    ("c.eml", "Prize waiting"),
    ("d.eml", "Lottery win"),
    ("STARRED/e.eml", "Starred offer"),
    ("SPAM/f.eml", "Already spam"),
    ("other@example.com/g.eml", "Offer for another mailbox"),
];

/// The local Gmail API, Redis and tansu for one test, and the handler's settings.
struct Harness {
    _redis: Redis,
    _kafka: Kafka,
    gmail: GmailApi,
    prefix: String,
    env: Vec<(String, String)>,
    store: Store,
    producer: FutureProducer,
    /// Gmail message ids by relative path in the mailbox folder.
    ids: BTreeMap<String, String>,
    /// Holds the mailbox and credentials files until the harness is dropped.
    _dir: ScratchDir,
}

impl Harness {
    async fn start(name: &str) -> Self {
        let dir = ScratchDir::new(&format!("actions-{name}"));
        let mailbox_dir = dir.join("mailbox");
        for (path, subject) in MESSAGES {
            let file = mailbox_dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            let message = format!(
                "From: sender@example.net\r\nTo: {MAILBOX}\r\nSubject: {subject}\r\n\
                 Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{path}@example.net>\r\n\r\n\
                 Body of {subject}.\r\n"
            );
            std::fs::write(file, message).unwrap();
        }

        let redis = Redis::start().unwrap();
        let kafka = Kafka::start().unwrap();
        let gmail = GmailApi::start(&mailbox_dir).unwrap();

        let prefix = format!("act{name}{}", std::process::id());
        let kafka_args = KafkaArgs::for_brokers(&kafka.brokers, &prefix);
        ensure_topics(&kafka_args, 1).await.unwrap();
        let producer: FutureProducer = kafka_args.producer_config().unwrap().create().unwrap();
        let store = Store::redis(&redis.url, &prefix).await.unwrap();

        let credentials = dir.join("service-account.json");
        gmail.write_service_account_key(&credentials).unwrap();
        let env = vec![
            ("SPAMFLOW_KAFKA_BROKERS".to_owned(), kafka.brokers.clone()),
            ("SPAMFLOW_TOPIC_PREFIX".to_owned(), prefix.clone()),
            ("SPAMFLOW_REDIS_URL".to_owned(), redis.url.clone()),
            ("SPAMFLOW_REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
            ("SPAMFLOW_GMAIL_ACTIONS".to_owned(), "on".to_owned()),
            ("SPAMFLOW_GMAIL_API_URL".to_owned(), gmail.base_url()),
            (
                "SPAMFLOW_GMAIL_CREDENTIALS_FILE".to_owned(),
                credentials.display().to_string(),
            ),
            ("SPAMFLOW_GMAIL_MAILBOXES".to_owned(), MAILBOX.to_owned()),
            // Short client-side retries keep the fault tests quick.
            ("SPAMFLOW_GMAIL_RETRY_BASE_MS".to_owned(), "10".to_owned()),
            ("SPAMFLOW_GMAIL_RETRY_MAX_MS".to_owned(), "50".to_owned()),
            (
                "RUST_LOG".to_owned(),
                "info,action_handler=debug".to_owned(),
            ),
        ];

        let mut harness = Self {
            _redis: redis,
            _kafka: kafka,
            gmail,
            prefix,
            env,
            store,
            producer,
            ids: BTreeMap::new(),
            _dir: dir,
        };
        for mailbox in [MAILBOX, OTHER_MAILBOX] {
            for message in harness.gmail.messages(mailbox).unwrap()["messages"]
                .as_array()
                .unwrap()
            {
                let source = message["source"].as_str().unwrap().to_owned();
                let id = message["id"].as_str().unwrap().to_owned();
                harness.ids.insert(source, id);
            }
        }
        assert_eq!(harness.ids.len(), MESSAGES.len(), "{:?}", harness.ids);
        harness
    }

    /// Returns the Gmail id of the message at `path` in the mailbox folder.
    fn id(&self, path: &str) -> String {
        self.ids[path].clone()
    }

    /// Starts the handler with the harness settings, `extra` settings on top, and the
    /// consumer group `group`, and waits until it serves /healthz with 200.
    fn start_handler(&self, name: &str, group: &str, extra: &[(&str, &str)]) -> Handler {
        let http_port = free_port().unwrap();
        let mut command = Command::new(workspace_binary("action-handler").unwrap());
        // Settings come only from the harness, never from the test process's environment.
        for (variable, _) in std::env::vars() {
            if variable.starts_with("SPAMFLOW_") {
                command.env_remove(variable);
            }
        }
        command.envs(self.env.iter().map(|(key, value)| (key, value)));

        command
            .env("SPAMFLOW_GROUP_ID", format!("{}-{group}", self.prefix))
            .env("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{http_port}"));
        for (key, value) in extra {
            command.env(key, value);
        }

        let mut process =
            ChildGuard::spawn(&format!("action-handler-{}-{name}", self.prefix), command).unwrap();
        wait_for_port(
            ([127, 0, 0, 1], http_port).into(),
            process.child_mut(),
            "action-handler",
        )
        .unwrap();
        eventually(WAIT, "the handler to join its group", || {
            Ok((http_get(http_port, "/healthz")?.0 == 200).then_some(()))
        })
        .unwrap();
        Handler { process, http_port }
    }

    /// Publishes a verdict for `message_id` of `mailbox` and waits for Kafka's ack.
    async fn publish(&self, mailbox: &str, message_id: &str, label: pb::Label, probability: f64) {
        let verdict = pb::VerdictEvent {
            mailbox: mailbox.to_owned(),
            message_id: message_id.to_owned(),
            label: label as i32,
            spam_probability: probability,
            model_version: "test".to_owned(),
            threshold: 0.9,
            reason: "model".to_owned(),
            ..pb::VerdictEvent::default()
        };
        let key = record_key(mailbox, message_id);
        let value = verdict.encode_to_vec();
        let topic = format!("{}.emails.verdicts", self.prefix);
        self.producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(error, _)| error)
            .unwrap();
    }

    /// Sets the fault switches of the local Gmail API.
    fn set_faults(&self, faults: Value) {
        self.gmail.set_faults(faults).unwrap();
    }

    /// Returns every messages.modify the local Gmail API received, as (message id, added,
    /// removed).
    fn modifications(&self) -> Vec<(String, Vec<String>, Vec<String>)> {
        let strings = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|label| label.as_str().unwrap().to_owned())
                .collect()
        };
        self.gmail
            .modifications()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                (
                    entry["message_id"].as_str().unwrap().to_owned(),
                    strings(&entry["added"]),
                    strings(&entry["removed"]),
                )
            })
            .collect()
    }

    /// Returns the labels of every message, by Gmail id.
    fn labels(&self) -> BTreeMap<String, Vec<String>> {
        self.gmail.messages(MAILBOX).unwrap()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| {
                let labels = message["label_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|label| label.as_str().unwrap().to_owned())
                    .collect();
                (message["id"].as_str().unwrap().to_owned(), labels)
            })
            .collect()
    }

    /// How many calls of a Gmail API method the local server received, faulted ones included.
    fn requests(&self, method: &str) -> u64 {
        self.gmail.requests().unwrap()[method].as_u64().unwrap_or(0)
    }

    /// Returns whether an own-change marker is stored for a label change.
    async fn marker(&self, message_id: &str, label_id: &str, added: bool) -> bool {
        let key = own_label_change_key(MAILBOX, message_id, label_id, added);
        self.store.value(&key).await.unwrap().is_some()
    }

    /// Returns the recorded label changes of an applied action, if it is recorded.
    async fn recorded(&self, message_id: &str, action: &str) -> Option<String> {
        let key = action_key(MAILBOX, message_id, action);
        self.store.value(&key).await.unwrap()
    }
}

/// A running action-handler process.
struct Handler {
    process: ChildGuard,
    http_port: u16,
}

impl Handler {
    /// Returns the value of `spamflow_actions_total` for an action and outcome, 0 when absent.
    fn count(&self, action: &str, outcome: &str) -> u64 {
        let (_, metrics) = http_get(self.http_port, "/metrics").unwrap();
        let series =
            format!("spamflow_actions_total{{action=\"{action}\",outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .map(|value| value.trim().parse::<f64>().unwrap() as u64)
            .unwrap_or(0)
    }

    /// Waits until the count of an action and outcome reaches `expected`.
    fn wait_for(&self, action: &str, outcome: &str, expected: u64) {
        eventually(WAIT, &format!("{expected} {action} {outcome}"), || {
            Ok((self.count(action, outcome) >= expected).then_some(()))
        })
        .unwrap_or_else(|error| panic!("{error}; handler log:\n{}", self.process.log()));
        assert_eq!(
            self.count(action, outcome),
            expected,
            "{action} {outcome} went past {expected}"
        );
    }

    /// Stops the handler with SIGTERM and checks that it exits cleanly.
    fn stop(mut self) {
        let status = self.process.terminate(Duration::from_secs(30)).unwrap();
        assert!(status.success(), "action-handler exited with {status}");
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_moves_once_under_redelivery() {
    let harness = Harness::start("once").await;
    let a = harness.id("a.eml");
    let b = harness.id("b.eml");
    let starred = harness.id("STARRED/e.eml");
    let spam = harness.id("SPAM/f.eml");

    let handler = harness.start_handler("first", "g1", &[]);
    // The same spam verdict twice, as a redelivery brings it.
    harness.publish(MAILBOX, &a, pb::Label::Spam, 0.99).await;
    harness.publish(MAILBOX, &a, pb::Label::Spam, 0.99).await;
    harness.publish(MAILBOX, &b, pb::Label::Ham, 0.01).await;
    harness
        .publish(MAILBOX, &starred, pb::Label::Spam, 0.97)
        .await;
    harness.publish(MAILBOX, &spam, pb::Label::Spam, 0.98).await;
    // Replayed corpus mail has no Gmail client and is only logged.
    harness
        .publish("replay", "spam-000.eml", pb::Label::Spam, 0.99)
        .await;
    handler.wait_for("move_to_spam", "no_mailbox", 1);
    handler.wait_for("move_to_spam", "applied", 2);
    handler.wait_for("move_to_spam", "duplicate", 1);
    handler.wait_for("move_to_spam", "unchanged", 1);

    // The handler acts on verdicts concurrently, so the order of the calls is not fixed.
    let mut expected = vec![
        (a.clone(), strings(&["SPAM"]), strings(&["INBOX"])),
        (starred.clone(), strings(&["SPAM"]), Vec::new()),
    ];
    expected.sort();
    let mut modifications = harness.modifications();
    modifications.sort();
    assert_eq!(
        modifications, expected,
        "one modify per spam message that was not in SPAM yet"
    );
    let labels = harness.labels();
    assert_eq!(labels[&a], strings(&["SPAM", "UNREAD"]));
    assert_eq!(labels[&b], strings(&["INBOX", "UNREAD"]));
    assert_eq!(labels[&starred], strings(&["SPAM", "STARRED", "UNREAD"]));

    // Markers for exactly the labels that changed.
    assert!(harness.marker(&a, "SPAM", true).await);
    // Only SPAM changes are feedback to the sync, so only they get a marker.
    assert!(!harness.marker(&a, "INBOX", false).await);
    assert!(!harness.marker(&a, "UNREAD", false).await);
    assert!(harness.marker(&starred, "SPAM", true).await);
    assert!(!harness.marker(&starred, "INBOX", false).await);
    assert!(!harness.marker(&starred, "STARRED", false).await);
    assert!(!harness.marker(&spam, "SPAM", true).await);
    assert!(!harness.marker(&b, "SPAM", true).await);

    assert_eq!(
        harness.recorded(&a, "move_to_spam").await.as_deref(),
        Some("+SPAM -INBOX")
    );
    assert_eq!(
        harness.recorded(&spam, "move_to_spam").await.as_deref(),
        Some("none")
    );
    assert_eq!(harness.recorded(&b, "move_to_spam").await, None);
    handler.stop();

    // A restarted handler in a new consumer group gets every verdict again.
    let restarted = harness.start_handler("second", "g2", &[]);
    restarted.wait_for("move_to_spam", "duplicate", 4);
    restarted.wait_for("move_to_spam", "no_mailbox", 1);
    assert_eq!(restarted.count("move_to_spam", "applied"), 0);
    restarted.stop();

    // Without the applied-action record, as after a crash between messages.modify and
    // recording it, the handler reads the labels and finds nothing left to change.
    harness
        .store
        .take_value(&action_key(MAILBOX, &a, "move_to_spam"))
        .await
        .unwrap();
    let third = harness.start_handler("third", "g3", &[]);
    third.wait_for("move_to_spam", "duplicate", 3);
    third.wait_for("move_to_spam", "unchanged", 1);
    third.stop();

    let mut modifications = harness.modifications();
    modifications.sort();
    assert_eq!(
        modifications, expected,
        "redeliveries and restarts sent no further modify"
    );
    assert_eq!(harness.requests("messages.modify"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspect_band_label_created_once() {
    let harness = Harness::start("suspect").await;
    let suspect_ids: Vec<String> = ["a.eml", "b.eml", "c.eml"]
        .iter()
        .map(|path| harness.id(path))
        .collect();
    let settings = [
        ("SPAMFLOW_SPAM_THRESHOLD", "0.95"),
        ("SPAMFLOW_SUSPECT_THRESHOLD", "0.6"),
    ];

    let handler = harness.start_handler("first", "g1", &settings);
    // Ham above the suspect threshold, and spam below the spam threshold.
    harness
        .publish(MAILBOX, &suspect_ids[0], pb::Label::Ham, 0.7)
        .await;
    harness
        .publish(MAILBOX, &suspect_ids[1], pb::Label::Spam, 0.92)
        .await;
    harness
        .publish(MAILBOX, &suspect_ids[2], pb::Label::Ham, 0.61)
        .await;
    // Clean: below the suspect threshold.
    let d = harness.id("d.eml");
    harness.publish(MAILBOX, &d, pb::Label::Ham, 0.3).await;
    handler.wait_for("label", "applied", 3);
    assert_eq!(handler.count("move_to_spam", "applied"), 0);

    let modifications = harness.modifications();
    assert_eq!(modifications.len(), 3, "{modifications:?}");
    let label_id = modifications[0].1[0].clone();
    assert!(label_id.starts_with("Label_"), "{label_id}");
    for (message_id, added, removed) in &modifications {
        assert!(suspect_ids.contains(message_id), "{message_id}");
        assert_eq!(added, &vec![label_id.clone()]);
        assert!(removed.is_empty());
        assert!(!harness.marker(message_id, &label_id, true).await);
        assert!(!harness.marker(message_id, "INBOX", false).await);
    }
    assert_eq!(harness.requests("labels.create"), 1);
    assert!(!harness.labels()[&d].contains(&label_id));
    handler.stop();

    // A restarted handler finds the label by name instead of creating another.
    let restarted = harness.start_handler("second", "g1", &settings);
    let e = harness.id("STARRED/e.eml");
    harness.publish(MAILBOX, &e, pb::Label::Ham, 0.8).await;
    restarted.wait_for("label", "applied", 1);
    restarted.stop();
    assert_eq!(harness.requests("labels.create"), 1);
    assert!(harness.labels()[&e].contains(&label_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let harness = Harness::start("dry").await;
    let a = harness.id("a.eml");
    let b = harness.id("b.eml");
    let before = harness.labels();

    let handler = harness.start_handler(
        "dry",
        "g1",
        &[
            ("SPAMFLOW_DRY_RUN", "true"),
            ("SPAMFLOW_SUSPECT_THRESHOLD", "0.5"),
        ],
    );
    harness.publish(MAILBOX, &a, pb::Label::Spam, 0.99).await;
    harness.publish(MAILBOX, &b, pb::Label::Ham, 0.7).await;
    handler.wait_for("move_to_spam", "dry_run", 1);
    handler.wait_for("label", "dry_run", 1);
    let log = handler.process.log();
    handler.stop();

    assert_eq!(harness.modifications(), Vec::new());
    assert_eq!(harness.requests("messages.modify"), 0);
    assert_eq!(harness.requests("labels.create"), 0);
    assert_eq!(harness.labels(), before);
    assert!(!harness.marker(&a, "SPAM", true).await);
    assert!(!harness.marker(&a, "INBOX", false).await);
    assert_eq!(harness.recorded(&a, "move_to_spam").await, None);
    assert_eq!(harness.recorded(&b, "label").await, None);

    let planned_move = log
        .lines()
        .find(|line| line.contains("Dry run") && line.contains(&a))
        .unwrap_or_else(|| panic!("no dry-run line for the spam message in:\n{log}"));
    assert!(planned_move.contains("+SPAM -INBOX"), "{planned_move}");
    let planned_label = log
        .lines()
        .find(|line| line.contains("Dry run") && line.contains(&b))
        .unwrap_or_else(|| panic!("no dry-run line for the suspect message in:\n{log}"));
    assert!(
        planned_label.contains("spamflow/suspected"),
        "{planned_label}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_failures_pause_then_apply() {
    let harness = Harness::start("faults").await;
    let a = harness.id("a.eml");
    let c = harness.id("c.eml");
    let settings = [("SPAMFLOW_GMAIL_MAX_ATTEMPTS", "3")];

    // Two 500s fit in the client's three attempts, so the client absorbs them.
    harness.set_faults(serde_json::json!({ "status_500": 2 }));
    let handler = harness.start_handler("transient", "g1", &settings);
    harness.publish(MAILBOX, &a, pb::Label::Spam, 0.99).await;
    handler.wait_for("move_to_spam", "applied", 1);
    assert_eq!(handler.count("move_to_spam", "failed"), 0);
    let (_, faults) = http_get(harness.gmail.port, "/control/faults").unwrap();
    let faults: Value = serde_json::from_str(&faults).unwrap();
    assert_eq!(faults["status_500"], 0, "both 500s were answered");

    // Every call fails, so the action outlasts the client's attempts and the handler retries
    // it until it stops, without committing the verdict's offset.
    harness.set_faults(serde_json::json!({ "status_500": 100_000 }));
    harness.publish(MAILBOX, &c, pb::Label::Spam, 0.99).await;
    eventually(WAIT, "repeated failed attempts", || {
        Ok((handler.count("move_to_spam", "failed") >= 2).then_some(()))
    })
    .unwrap();
    assert_eq!(handler.count("move_to_spam", "applied"), 1);
    handler.stop();
    assert_eq!(harness.modifications().len(), 1);

    // Gmail recovers; the restarted handler in the same group gets the unapplied verdict again.
    harness.set_faults(serde_json::json!({}));
    let restarted = harness.start_handler("recovered", "g1", &settings);
    restarted.wait_for("move_to_spam", "applied", 1);
    assert_eq!(restarted.count("move_to_spam", "duplicate"), 0);
    restarted.stop();

    let moved: Vec<String> = harness
        .modifications()
        .into_iter()
        .map(|(message_id, _, _)| message_id)
        .collect();
    assert_eq!(moved, vec![a, c]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_message_does_not_block() {
    let harness = Harness::start("gone").await;
    let a = harness.id("a.eml");
    let missing = "ffffffffffffffff";

    let handler = harness.start_handler("gone", "g1", &[("SPAMFLOW_CONCURRENCY", "1")]);
    harness
        .publish(MAILBOX, missing, pb::Label::Spam, 0.99)
        .await;
    harness.publish(MAILBOX, &a, pb::Label::Spam, 0.99).await;
    handler.wait_for("move_to_spam", "not_found", 1);
    handler.wait_for("move_to_spam", "applied", 1);
    handler.stop();

    assert_eq!(
        harness.modifications(),
        vec![(a.clone(), strings(&["SPAM"]), strings(&["INBOX"]))]
    );
    assert!(!harness.marker(missing, "SPAM", true).await);
    assert_eq!(harness.recorded(missing, "move_to_spam").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mailbox_gets_its_own_move() {
    let harness = Harness::start("two").await;
    let mine = harness.id("a.eml");
    let theirs = harness.id("other@example.com/g.eml");
    let both = format!("{MAILBOX},{OTHER_MAILBOX}");

    let handler = harness.start_handler("two", "g1", &[("SPAMFLOW_GMAIL_MAILBOXES", &both)]);
    harness
        .publish(OTHER_MAILBOX, &theirs, pb::Label::Spam, 0.99)
        .await;
    harness.publish(MAILBOX, &mine, pb::Label::Spam, 0.99).await;
    handler.wait_for("move_to_spam", "applied", 2);
    handler.stop();

    let mut moved: Vec<(String, String)> = harness
        .gmail
        .modifications()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let mailbox = entry["mailbox"].as_str().unwrap().to_owned();
            (mailbox, entry["message_id"].as_str().unwrap().to_owned())
        })
        .collect();
    moved.sort();
    assert_eq!(
        moved,
        vec![
            (MAILBOX.to_owned(), mine.clone()),
            (OTHER_MAILBOX.to_owned(), theirs.clone()),
        ]
    );
    let other_labels = harness.gmail.messages(OTHER_MAILBOX).unwrap();
    assert_eq!(
        other_labels["messages"][0]["label_ids"],
        serde_json::json!(["SPAM", "UNREAD"])
    );
    let marker = own_label_change_key(OTHER_MAILBOX, &theirs, "SPAM", true);
    assert!(harness.store.value(&marker).await.unwrap().is_some());
    let wrong_mailbox = own_label_change_key(MAILBOX, &theirs, "SPAM", true);
    assert!(harness.store.value(&wrong_mailbox).await.unwrap().is_none());
}

/// Runs the handler binary with `args` and returns its exit code and stderr.
fn run_with_flags(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(workspace_binary("action-handler").unwrap())
        .args(args)
        .env_remove("SPAMFLOW_GMAIL_ACTIONS")
        .env_remove("SPAMFLOW_GMAIL_CREDENTIALS_FILE")
        .env_remove("SPAMFLOW_GMAIL_MAILBOXES")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invalid_flags_exit_64() {
    let cases: [(&[&str], &str); 15] = [
        (&["--suspect-threshold", "1.5"], "--suspect-threshold"),
        (
            &["--gmail-max-attempts", "-1"],
            "`-1` is below the smallest allowed, 0",
        ),
        (&["--concurrency", "0"], "--concurrency"),
        (
            &["--gmail-quota-units-per-second", "0"],
            "--gmail-quota-units-per-second (SPAMFLOW_GMAIL_QUOTA_UNITS_PER_SECOND)",
        ),
        (&["--gmail-max-attempts", "0"], "--gmail-max-attempts"),
        (
            &["--gmail-request-timeout-ms", "0"],
            "--gmail-request-timeout-ms",
        ),
        (
            &["--gmail-retry-base-ms", "1000", "--gmail-retry-max-ms", "1"],
            "--gmail-retry-base-ms 1000 (SPAMFLOW_GMAIL_RETRY_BASE_MS) is above",
        ),
        (&["--redis-url", "nope"], "--redis-url (SPAMFLOW_REDIS_URL)"),
        (&["--redis-url", "redis://"], "no host"),
        (&["--spam-threshold", "high"], "--spam-threshold"),
        (
            &["--spam-threshold", "0.8", "--suspect-threshold", "0.9"],
            "--suspect-threshold 0.9",
        ),
        (&["--suspect-label", "SPAM"], "reserved"),
        (&["--suspect-label", "a//b"], "--suspect-label"),
        (&["--spam-action", "delete"], "--spam-action"),
        (&["--dry-run"], "--dry-run"),
    ];
    for (args, expected) in cases {
        let (code, stderr) = run_with_flags(args);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }

    let (code, stderr) = run_with_flags(&["--gmail-actions", "on"]);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("--gmail-credentials-file"), "{stderr}");
}

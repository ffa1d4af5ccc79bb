//! The whole mesh on a Gmail mailbox of SpamAssassin corpus messages: the local Gmail API,
//! gmail-integration, email-processor, spam-detector, bloom-filter and action-handler as
//! separate processes, with real Redis and the Kafka-compatible broker tansu.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use action_handler::action_key;
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::Value;
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::{KafkaArgs, ensure_topics};
use spamflow_runtime::store::Store;
use spamflow_testkit::{
    ChildGuard, GmailApi, Kafka, Redis, ScratchDir, eventually, free_port, http_get, wait_for_port,
    workspace_binary,
};

/// The default mailbox of the local Gmail API.
const MAILBOX: &str = "me@example.com";
/// Corpus messages of each class in the mailbox.
const PER_CLASS: usize = 100;
/// How long the test waits for the mesh to catch up. Only a failing run waits this long.
const WAIT: Duration = Duration::from_secs(120);

/// Copies the first `count` files of a corpus folder, by name, into `mailbox` as
/// `<class>-NN.eml`.
fn copy_corpus(group: &str, class: &str, count: usize, mailbox: &Path) {
    for (index, file) in spamflow_testkit::corpus_files(group, count)
        .into_iter()
        .enumerate()
    {
        std::fs::copy(file, mailbox.join(format!("{class}-{index:03}.eml"))).unwrap();
    }
}

/// Environment for every service process: the test's servers and nothing from the test
/// process's own `SPAMFLOW_*` variables.
struct Services {
    env: Vec<(String, String)>,
}

impl Services {
    fn command(&self, binary: &str, extra: &[(&str, String)]) -> Command {
        let mut command = Command::new(workspace_binary(binary).unwrap());
        for (variable, _) in std::env::vars() {
            if variable.starts_with("SPAMFLOW_") {
                command.env_remove(variable);
            }
        }
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        for (key, value) in extra {
            command.env(key, value);
        }
        command
    }

    /// Starts `binary` and waits until it listens on `port`.
    fn start(&self, binary: &str, port: u16, extra: &[(&str, String)]) -> ChildGuard {
        let mut process = ChildGuard::spawn(binary, self.command(binary, extra)).unwrap();
        wait_for_port(([127, 0, 0, 1], port).into(), process.child_mut(), binary).unwrap();
        process
    }
}

/// Reads every feedback event of partition 0 of `topic`, from the start to the end of the
/// partition.
fn read_feedback(brokers: &str, topic: &str) -> Vec<pb::FeedbackEvent> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "action-handler-mesh-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    partitions
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&partitions).unwrap();
    let mut events = Vec::new();
    loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(record)) => {
                let payload = record.payload().unwrap_or_default();
                events.push(pb::FeedbackEvent::decode(payload).unwrap());
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return events,
            Some(Err(error)) => panic!("failed to read {topic}: {error}"),
            None => panic!("no end of {topic} within 10 s"),
        }
    }
}

/// Returns the mailbox's history id from the control API.
fn history_id(gmail: &GmailApi) -> u64 {
    let listing = gmail.messages(MAILBOX).unwrap();
    let value = &listing["history_id"];
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|id| id.parse().ok()))
        .unwrap_or_else(|| panic!("no history_id in {listing}"))
}

/// Waits until gmail-integration has stored a checkpoint at or past the mailbox's current
/// history id, so it has read every change made so far.
async fn wait_for_sync(store: &Store, gmail: &GmailApi) {
    let target = history_id(gmail);
    let key = gmail_integration::keys::checkpoint_key(MAILBOX);
    let started = std::time::Instant::now();
    loop {
        let checkpoint: Option<u64> = store
            .value(&key)
            .await
            .unwrap()
            .and_then(|value| value.parse().ok());
        if checkpoint.is_some_and(|checkpoint| checkpoint >= target) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "gmail-integration checkpoint {checkpoint:?} did not reach history id {target}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Returns the value of `spamflow_actions_total` for an action and outcome on a metrics port.
fn action_count(http_port: u16, action: &str, outcome: &str) -> u64 {
    let (_, metrics) = http_get(http_port, "/metrics").unwrap();
    let series = format!("spamflow_actions_total{{action=\"{action}\",outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map(|value| value.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

/// Returns (message id, added, removed) of every messages.modify the local Gmail API received.
fn modifications(gmail: &GmailApi) -> Vec<(String, Vec<String>, Vec<String>)> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|label| label.as_str().unwrap().to_owned())
            .collect()
    };
    gmail
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_mailbox_spam_moved_once() {
    let dir = ScratchDir::new("mesh");
    let mailbox_dir = dir.join("mailbox");
    std::fs::create_dir_all(&mailbox_dir).unwrap();
    copy_corpus("ham/easy-ham-1", "ham", PER_CLASS, &mailbox_dir);
    copy_corpus("spam/spam-1", "spam", PER_CLASS, &mailbox_dir);

    let redis = Redis::start().unwrap();
    let kafka = Kafka::start().unwrap();
    let gmail = GmailApi::start(&mailbox_dir).unwrap();
    let sources: BTreeMap<String, String> = gmail.messages(MAILBOX).unwrap()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| {
            (
                message["id"].as_str().unwrap().to_owned(),
                message["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(sources.len(), 2 * PER_CLASS);

    let prefix = format!("mesh{}", std::process::id());
    let kafka_args = KafkaArgs::for_brokers(&kafka.brokers, &prefix);
    ensure_topics(&kafka_args, 1).await.unwrap();
    let topics = kafka_args.topics();
    let store = Store::redis(&redis.url, &prefix).await.unwrap();
    let credentials = dir.join("service-account.json");
    gmail.write_service_account_key(&credentials).unwrap();

    let services = Services {
        env: vec![
            ("SPAMFLOW_KAFKA_BROKERS".to_owned(), kafka.brokers.clone()),
            ("SPAMFLOW_TOPIC_PREFIX".to_owned(), prefix.clone()),
            ("SPAMFLOW_REDIS_URL".to_owned(), redis.url.clone()),
            ("SPAMFLOW_REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
            ("SPAMFLOW_GMAIL_API_URL".to_owned(), gmail.base_url()),
            (
                "SPAMFLOW_GMAIL_CREDENTIALS_FILE".to_owned(),
                credentials.display().to_string(),
            ),
            ("SPAMFLOW_GMAIL_MAILBOXES".to_owned(), MAILBOX.to_owned()),
        ],
    };
    let detector_port = free_port().unwrap();
    let bloom_port = free_port().unwrap();
    let listen = |port: u16| ("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{port}"));
    let _detector = services.start("spam-detector", detector_port, &[listen(detector_port)]);
    let _bloom = services.start("bloom-filter", bloom_port, &[listen(bloom_port)]);
    let processor_port = free_port().unwrap();
    let _processor = services.start(
        "email-processor",
        processor_port,
        &[
            (
                "SPAMFLOW_DETECTOR_URL",
                format!("http://127.0.0.1:{detector_port}"),
            ),
            (
                "SPAMFLOW_BLOOM_URL",
                format!("http://127.0.0.1:{bloom_port}"),
            ),
            ("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{processor_port}")),
        ],
    );
    let handler_port = free_port().unwrap();
    let handler_settings = |group: &str| {
        vec![
            ("SPAMFLOW_GMAIL_ACTIONS", "on".to_owned()),
            ("SPAMFLOW_GROUP_ID", format!("{prefix}-{group}")),
            ("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{handler_port}")),
        ]
    };
    let mut handler = services.start("action-handler", handler_port, &handler_settings("g1"));
    let sync_port = free_port().unwrap();
    let _sync = services.start(
        "gmail-integration",
        sync_port,
        &[
            ("SPAMFLOW_GMAIL_POLL_INTERVAL_MS", "200".to_owned()),
            ("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{sync_port}")),
        ],
    );

    // Every message gets a verdict, and every SPAM verdict an applied move.
    let verdicts = eventually(WAIT, "a verdict for every message", || {
        let verdicts = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(store.verdicts())
        })?;
        Ok((verdicts.len() == sources.len()).then_some(verdicts))
    })
    .unwrap();
    let spam_ids: BTreeSet<String> = sources
        .keys()
        .filter(|id| verdicts[&format!("{MAILBOX}/{id}")] == "spam")
        .cloned()
        .collect();
    let spam_files = spam_ids
        .iter()
        .filter(|id| sources[*id].starts_with("spam-"))
        .count();
    // The shipped model catches well over 90% of this corpus's spam.
    assert!(
        spam_files >= PER_CLASS * 9 / 10,
        "only {spam_files} of {PER_CLASS} corpus spam messages were judged spam"
    );
    eventually(WAIT, "a move for every SPAM verdict", || {
        Ok(
            (action_count(handler_port, "move_to_spam", "applied") >= spam_ids.len() as u64)
                .then_some(()),
        )
    })
    .unwrap();
    for id in &spam_ids {
        let key = action_key(MAILBOX, id, "move_to_spam");
        assert_eq!(
            store.value(&key).await.unwrap().as_deref(),
            Some("+SPAM -INBOX"),
            "{}",
            sources[id]
        );
    }

    let mut moved: Vec<String> = modifications(&gmail)
        .into_iter()
        .map(|(id, added, removed)| {
            assert_eq!(added, vec!["SPAM".to_owned()], "{}", sources[&id]);
            assert_eq!(removed, vec!["INBOX".to_owned()], "{}", sources[&id]);
            id
        })
        .collect();
    moved.sort();
    assert_eq!(
        moved,
        spam_ids.iter().cloned().collect::<Vec<_>>(),
        "one move for each message judged spam, and none for ham"
    );

    // gmail-integration reads the moves from the mailbox history and takes them for
    // spamflow's own changes, so no feedback comes of them.
    wait_for_sync(&store, &gmail).await;
    assert_eq!(read_feedback(&kafka.brokers, &topics.feedback), Vec::new());

    // A user moving a ham message to SPAM is feedback.
    let user_moved = sources
        .keys()
        .find(|id| !spam_ids.contains(*id))
        .expect("a message judged ham")
        .clone();
    gmail
        .user_modify(MAILBOX, &user_moved, &["SPAM"], &["INBOX"])
        .unwrap();
    wait_for_sync(&store, &gmail).await;
    let feedback = eventually(WAIT, "the user's feedback", || {
        let events = read_feedback(&kafka.brokers, &topics.feedback);
        Ok((!events.is_empty()).then_some(events))
    })
    .unwrap();
    assert_eq!(feedback.len(), 1, "{feedback:?}");
    assert_eq!(feedback[0].message_id, user_moved);
    assert_eq!(feedback[0].label, pb::Label::Spam as i32);

    // A handler in a new consumer group gets every verdict again and changes nothing.
    let status = handler.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "action-handler exited with {status}");
    let restarted = services.start("action-handler", handler_port, &handler_settings("g2"));
    eventually(WAIT, "every SPAM verdict seen again", || {
        Ok(
            (action_count(handler_port, "move_to_spam", "duplicate") >= spam_ids.len() as u64)
                .then_some(()),
        )
    })
    .unwrap();
    assert_eq!(action_count(handler_port, "move_to_spam", "applied"), 0);
    drop(restarted);
    assert_eq!(
        modifications(&gmail).len(),
        spam_ids.len() + 1,
        "only the user's own modify came after the handler's moves"
    );
}

//! A sync under test: Redis, the tansu broker, the local Gmail API over a folder of
//! SpamAssassin corpus messages, and the `gmail-integration` binary, all real processes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use spamflow_runtime::kafka::{KafkaArgs, Topics};
use spamflow_runtime::store::Store;
use spamflow_testkit::{
    ChildGuard, GmailApi, GmailApiOptions, Kafka, Redis, eventually, free_port, wait_for_port,
    workspace_binary,
};

/// The address of the local Gmail API's default mailbox.
pub const MAILBOX: &str = "me@example.com";
/// Long enough for a sync on a loaded two-core machine; only a failing test waits this long.
pub const WAIT: Duration = Duration::from_secs(90);

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
    pub header_names: Vec<String>,
}

/// Processes and files of one test.
pub struct Harness {
    pub redis: Redis,
    pub kafka: Kafka,
    pub gmail: GmailApi,
    pub dir: tempfile::TempDir,
    pub prefix: String,
    pub topics: Topics,
    pub store: Store,
    pub http_port: u16,
    /// Gmail ids of the messages written to the top-level folder (INBOX), by file content.
    pub inbox: HashMap<String, Vec<u8>>,
}

/// Reads the first `count` files of a corpus folder, sorted by name.
pub fn corpus_messages(group: &str, count: usize) -> Vec<Vec<u8>> {
    spamflow_testkit::corpus_files(group, count)
        .into_iter()
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

/// Options of a harness.
#[derive(Default)]
pub struct Setup {
    /// Ham and spam messages in INBOX.
    pub ham: usize,
    pub spam: usize,
    /// Messages in the SPAM folder, which the INBOX filter leaves out.
    pub in_spam_folder: usize,
    /// Push notifications from the local Gmail API to the service, with this token.
    pub push_token: Option<String>,
}

impl Harness {
    pub async fn start(setup: Setup) -> Self {
        let redis = Redis::start().unwrap();
        let kafka = Kafka::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mailbox_dir = dir.path().join("mailbox");
        std::fs::create_dir_all(mailbox_dir.join("SPAM")).unwrap();

        let mut files = Vec::new();
        for (index, raw) in corpus_messages("ham/easy-ham-1", setup.ham)
            .into_iter()
            .enumerate()
        {
            files.push((format!("ham-{index:04}.eml"), raw));
        }
        for (index, raw) in corpus_messages("spam/spam-1", setup.spam)
            .into_iter()
            .enumerate()
        {
            files.push((format!("spam-{index:04}.eml"), raw));
        }
        for (name, raw) in &files {
            std::fs::write(mailbox_dir.join(name), raw).unwrap();
        }
        let extra = corpus_messages("spam/spam-2", setup.in_spam_folder);
        for (index, raw) in extra.into_iter().enumerate() {
            std::fs::write(mailbox_dir.join(format!("SPAM/old-{index:04}.eml")), raw).unwrap();
        }

        let http_port = free_port().unwrap();
        let options = GmailApiOptions {
            email: Some(MAILBOX.to_owned()),
            push_endpoint: setup
                .push_token
                .as_ref()
                .map(|_| format!("http://127.0.0.1:{http_port}/gmail/push")),
            push_token: setup.push_token.clone(),
            ..GmailApiOptions::default()
        };
        let gmail = GmailApi::start_with(&mailbox_dir, &options).unwrap();

        // Map file contents to the ids the server gave them, through the INBOX listing.
        let listing = gmail.messages(MAILBOX).unwrap();
        let mut inbox = HashMap::new();
        for message in listing["messages"].as_array().unwrap() {
            let labels: Vec<&str> = message["label_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|label| label.as_str().unwrap())
                .collect();
            if labels.contains(&"INBOX") {
                let source = message["source"].as_str().unwrap();
                let raw = std::fs::read(mailbox_dir.join(source)).unwrap();
                inbox.insert(message["id"].as_str().unwrap().to_owned(), raw);
            }
        }
        assert_eq!(
            inbox.len(),
            files.len(),
            "INBOX of the local Gmail API: {listing}"
        );

        let prefix = format!("gs{}x{}", std::process::id(), free_port().unwrap());
        let kafka_args = KafkaArgs::for_brokers(&kafka.brokers, &prefix);
        spamflow_runtime::kafka::ensure_topics(&kafka_args, 1)
            .await
            .unwrap();
        let store = Store::redis(&redis.url, &prefix).await.unwrap();
        Self {
            redis,
            kafka,
            gmail,
            dir,
            prefix: prefix.clone(),
            topics: kafka_args.topics(),
            store,
            http_port,
            inbox,
        }
    }

    /// Writes a service account key whose token_uri is the local Gmail API, and returns it.
    pub fn service_account_file(&self) -> PathBuf {
        let path = self.dir.path().join("service-account.json");
        self.gmail.write_service_account_key(&path).unwrap()
    }

    /// Writes a Desktop app OAuth client for the local Gmail API, and returns it.
    pub fn installed_client_file(&self) -> PathBuf {
        let base = self.gmail.base_url();
        let client = serde_json::json!({"installed": {
            "client_id": "spamflow-test.apps.local",
            "client_secret": "test-client-secret",
            "auth_uri": format!("{base}o/oauth2/auth"),
            "token_uri": format!("{base}token"),
            "redirect_uris": ["http://localhost"],
        }});
        let path = self.dir.path().join("client-secret.json");
        std::fs::write(&path, client.to_string()).unwrap();
        path
    }

    /// Returns a command running `gmail-integration` with `args`, with the environment of
    /// this harness and nothing from the test process's `SPAMFLOW_*` variables.
    pub fn command(&self, credentials: &Path) -> Command {
        let mut command = Command::new(workspace_binary("gmail-integration").unwrap());
        for (name, _) in std::env::vars() {
            if name.starts_with("SPAMFLOW_") {
                command.env_remove(name);
            }
        }
        command
            .env("SPAMFLOW_KAFKA_BROKERS", &self.kafka.brokers)
            .env("SPAMFLOW_TOPIC_PREFIX", &self.prefix)
            .env("SPAMFLOW_REDIS_URL", &self.redis.url)
            .env("SPAMFLOW_REDIS_KEY_PREFIX", &self.prefix)
            .env("SPAMFLOW_GMAIL_API_URL", self.gmail.base_url())
            .env("SPAMFLOW_GMAIL_CREDENTIALS_FILE", credentials)
            .env("SPAMFLOW_GMAIL_RETRY_BASE_MS", "20")
            .env("SPAMFLOW_GMAIL_RETRY_MAX_MS", "200")
            .env("SPAMFLOW_GMAIL_POLL_INTERVAL_MS", "200")
            .env(
                "SPAMFLOW_HTTP_ADDR",
                format!("127.0.0.1:{}", self.http_port),
            );
        command
    }

    /// Starts the service and waits for its HTTP port.
    pub fn spawn(&self, mut command: Command) -> ChildGuard {
        let log_level_set = command.get_envs().any(|(name, _)| name == "RUST_LOG");
        if !log_level_set {
            command.env(
                "RUST_LOG",
                "info,spamflow_gmail=debug,gmail_integration=debug",
            );
        }
        let mut guard = ChildGuard::spawn("gmail-integration", command).unwrap();
        wait_for_port(
            ([127, 0, 0, 1], self.http_port).into(),
            guard.child_mut(),
            "gmail-integration",
        )
        .unwrap();
        guard
    }

    /// Returns the stored checkpoint of the default mailbox.
    pub async fn checkpoint(&self) -> Option<u64> {
        self.store
            .value(&gmail_integration::keys::checkpoint_key(MAILBOX))
            .await
            .unwrap()
            .map(|value| value.parse().unwrap())
    }

    /// Waits until the checkpoint exists and is at least `at_least`.
    pub async fn wait_for_checkpoint(&self, at_least: u64) -> u64 {
        let started = std::time::Instant::now();
        loop {
            if let Some(checkpoint) = self.checkpoint().await
                && checkpoint >= at_least
            {
                return checkpoint;
            }
            assert!(
                started.elapsed() < WAIT,
                "no checkpoint at or above {at_least} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Returns the mailbox's current history id, from the control API.
    pub fn history_id(&self) -> u64 {
        let listing = self.gmail.messages(MAILBOX).unwrap();
        listing["history_id"]
            .as_u64()
            .or_else(|| {
                listing["history_id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
            })
            .unwrap_or_else(|| panic!("no history_id in {listing}"))
    }

    /// Reads every record of `topic` up to its high watermark.
    pub fn read_topic(&self, topic: &str) -> Vec<Record> {
        read_topic(&self.kafka.brokers, topic, None)
    }

    /// Waits until `topic` has at least `count` records, then returns all of them.
    pub fn wait_for_records(&self, topic: &str, count: usize) -> Vec<Record> {
        eventually(WAIT, &format!("{count} records in {topic}"), || {
            let records = read_topic(&self.kafka.brokers, topic, Some(count));
            Ok((records.len() >= count).then_some(records))
        })
        .unwrap()
    }

    /// Returns the record key of a Gmail message of the default mailbox.
    pub fn key(id: &str) -> String {
        format!("{MAILBOX}/{id}")
    }

    /// Decodes the email events of `records`.
    pub fn email_events(records: &[Record]) -> Vec<spamflow_proto::v1::EmailEvent> {
        records
            .iter()
            .map(|record| {
                spamflow_proto::v1::EmailEvent::decode(record.payload.as_slice()).unwrap()
            })
            .collect()
    }
}

/// Reads every record of partition 0 of `topic` from the start until the consumer reports
/// the end of the partition.
///
/// NOTE: tansu 0.6 can report a high watermark one below the last offset of a batch. The
/// watermark is therefore only a lower bound here, and the end-of-partition event decides. While a
/// producer is still writing, the end may not come, so `enough` stops the read early.
pub fn read_topic(brokers: &str, topic: &str, enough: Option<usize>) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "gmail-integration-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut records = Vec::new();
    if high <= 0 {
        return records;
    }
    let mut at_end = false;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let started = std::time::Instant::now();
    while !at_end || (records.len() as i64) < high {
        if enough.is_some_and(|enough| records.len() >= enough) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "read {} of {high} records of {topic}",
            records.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let header_names = message
                    .headers()
                    .map(|headers| headers.iter().map(|header| header.key.to_owned()).collect())
                    .unwrap_or_default();
                records.push(Record {
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    header_names,
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end = true,
            Some(Err(error)) => panic!("failed to read {topic}: {error}"),
            None => {}
        }
    }
    records
}

//! `spamctl feedback`: publish an operator's corrections to the feedback topic, as the Gmail
//! sync does when a user moves a message into or out of SPAM.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use spamflow_core::{Email, Limits};
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::{KafkaArgs, record_key};
use tracing::Instrument as _;

/// The label a correction gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelArg {
    Spam,
    Ham,
}

/// `spamctl feedback` flags.
#[derive(Debug, clap::Args)]
pub struct FeedbackArgs {
    /// The label the messages really have.
    #[arg(long, value_enum)]
    pub label: LabelArg,
    /// Message files to correct, one RFC 5322 message each. The file's base name becomes the
    /// message id, as in `spamctl replay`.
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Mailbox written into each event and its record key (`spamctl replay` uses `replay`).
    #[arg(
        long,
        default_value = "replay",
        value_parser = spamflow_runtime::cli::parse_mailbox
    )]
    pub mailbox: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// One correction ready to publish.
struct Correction {
    message_id: String,
    event: pb::FeedbackEvent,
}

pub async fn run(args: &FeedbackArgs) -> anyhow::Result<()> {
    // Read and check every file before publishing any, so a typo publishes nothing.
    let label = match args.label {
        LabelArg::Spam => pb::Label::Spam,
        LabelArg::Ham => pb::Label::Ham,
    };
    let mut seen = HashSet::new();
    let mut corrections = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let correction = read_correction(path, &args.mailbox, label)?;
        if !seen.insert(correction.message_id.clone()) {
            bail!(
                "two files are named {}; base names are used as message ids and must be unique",
                correction.message_id
            );
        }
        corrections.push(correction);
    }

    let producer: FutureProducer = args
        .kafka
        .producer_config()?
        .create()
        .context("failed to create the Kafka producer")?;
    let topic = args.kafka.topics().feedback;
    for correction in &corrections {
        publish(&producer, &topic, &args.mailbox, correction).await?;
    }
    outln!(
        "published {} corrections labelled {} to {topic}",
        corrections.len(),
        label
            .as_str_name()
            .trim_start_matches("LABEL_")
            .to_lowercase()
    )?;
    Ok(())
}

/// Reads a message file into a feedback event with the fingerprints the email processor would
/// compute.
fn read_correction(path: &Path, mailbox: &str, label: pb::Label) -> anyhow::Result<Correction> {
    let raw = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let email = Email::parse(&raw, Limits::default())
        .with_context(|| format!("{} is not a valid RFC 5322 message", path.display()))?;
    let message_id = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", path.display()))?;
    let fingerprints = spamflow_runtime::convert::body_fingerprints(&email.fingerprint_text());
    Ok(Correction {
        event: pb::FeedbackEvent {
            mailbox: mailbox.to_owned(),
            message_id: message_id.clone(),
            label: label as i32,
            fingerprints,
            raw,
            created_at_ms: spamflow_runtime::now_ms(),
        },
        message_id,
    })
}

/// Publishes one correction and waits until Kafka acknowledges it.
async fn publish(
    producer: &FutureProducer,
    topic: &str,
    mailbox: &str,
    correction: &Correction,
) -> anyhow::Result<()> {
    let key = record_key(mailbox, &correction.message_id);
    let payload = correction.event.encode_to_vec();
    let span = tracing::info_span!(
        "publish_feedback",
        otel.kind = "producer",
        messaging.system = "kafka",
        topic,
        message_id = %correction.message_id,
    );
    async {
        let record = FutureRecord::to(topic).key(&key).payload(&payload).headers(
            spamflow_runtime::propagation::inject_kafka(OwnedHeaders::new()),
        );
        producer
            .send(record, Timeout::After(Duration::from_secs(60)))
            .await
            .map_err(|(error, _)| {
                anyhow::anyhow!(
                    "failed to publish the correction of {}: {error}",
                    correction.message_id
                )
            })?;
        Ok(())
    }
    .instrument(span)
    .await
}

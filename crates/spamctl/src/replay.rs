//! `spamctl replay`: publish a labelled corpus into the raw topic, with the true label attached
//! so a run can be scored.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::ProgressBar;
use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use spamflow_core::Label;
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::{KafkaArgs, record_key};
use tracing::Instrument as _;

use crate::corpus::{self, CorpusMessage, SplitFilter};

/// Records in flight at once while publishing.
const IN_FLIGHT: usize = 256;

/// `spamctl replay` flags.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Folder (searched recursively) or mbox file of spam; repeatable.
    #[arg(long, num_args = 1.., value_parser = crate::corpus::existing_path())]
    pub spam: Vec<PathBuf>,
    /// Folder (searched recursively) or mbox file of ham; repeatable.
    #[arg(long, num_args = 1.., value_parser = crate::corpus::existing_path())]
    pub ham: Vec<PathBuf>,
    /// Part of the TRAIN/TEST split to publish.
    #[arg(long, value_enum, default_value = "all")]
    pub split: SplitFilter,
    /// Mailbox name written into each event and its record key.
    #[arg(
        long,
        default_value = "replay",
        value_parser = spamflow_runtime::cli::parse_mailbox
    )]
    pub mailbox: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

pub async fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    if args.spam.is_empty() && args.ham.is_empty() {
        anyhow::bail!("nothing to replay: give at least one --spam or --ham path");
    }
    let messages = corpus::load(&args.spam, &args.ham, args.split)?;
    let producer: FutureProducer = args
        .kafka
        .producer_config()?
        .create()
        .context("failed to create the Kafka producer")?;
    let progress = crate::train::progress_bar(messages.len() as u64, "replaying");
    let published = publish(
        &producer,
        &args.kafka.topics().raw,
        &args.mailbox,
        &messages,
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    outln!(
        "published {published} messages to {}",
        args.kafka.topics().raw
    )?;
    Ok(())
}

/// Publishes messages as `EmailEvent`s and waits until Kafka acknowledges every one. Each
/// record gets a `publish_email` span, the root of that message's trace, whose context
/// travels in the record headers.
///
/// # Errors
///
/// Fails on the first record Kafka does not acknowledge.
pub async fn publish(
    producer: &FutureProducer,
    topic: &str,
    mailbox: &str,
    messages: &[CorpusMessage],
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut deliveries = futures::stream::iter(messages)
        .map(|message| async move {
            let event = pb::EmailEvent {
                mailbox: mailbox.to_owned(),
                message_id: message.name.clone(),
                raw: message.raw.clone(),
                source: "replay".to_owned(),
                published_at_ms: spamflow_runtime::now_ms(),
                true_label: match message.label {
                    Label::Spam => pb::Label::Spam,
                    Label::Ham => pb::Label::Ham,
                } as i32,
                ..pb::EmailEvent::default()
            };
            let key = record_key(mailbox, &message.name);
            let payload = event.encode_to_vec();
            let span = tracing::info_span!(
                "publish_email",
                otel.kind = "producer",
                messaging.system = "kafka",
                topic,
                message_id = %message.name,
                partition = tracing::field::Empty,
                offset = tracing::field::Empty,
            );
            async {
                let record = FutureRecord::to(topic).key(&key).payload(&payload).headers(
                    spamflow_runtime::propagation::inject_kafka(OwnedHeaders::new()),
                );
                let delivery = producer
                    .send(record, Timeout::After(Duration::from_secs(60)))
                    .await
                    .map_err(|(error, _)| {
                        anyhow::anyhow!("failed to publish {}: {error}", message.name)
                    })?;
                let span = tracing::Span::current();
                span.record("partition", delivery.partition);
                span.record("offset", delivery.offset);
                Ok::<_, anyhow::Error>(())
            }
            .instrument(span)
            .await
        })
        .buffer_unordered(IN_FLIGHT);
    let mut published = 0;
    while let Some(delivery) = deliveries.next().await {
        delivery?;
        published += 1;
        progress.inc(1);
    }
    Ok(published)
}

//! Model hot-swap: the detector follows the compacted models topic and serves each new
//! version announced under its model name.
//!
//! Every detector reads the whole topic from the beginning with manual partition assignment
//! and commits nothing, so each replica reads every announcement, and a restarted one ends up
//! with the latest version that compaction kept. An announcement names a model file by path.
//! The detector reads the file, compares its sha256 with the announced one and validates the
//! model before it replaces the current one. Requests in flight finish with the model they
//! started with. A bad announcement is logged, counted as `rejected` in
//! `spamflow_model_announcements_total`, and the current model stays.
//!
//! At start, announcements of the detector's model that a later one in the topic supersedes
//! are skipped, so a restart loads only the newest version.
//!
//! NOTE: only local file paths (plain or `file://`) are supported as locations, so every
//! detector must see the trainer's model folder, for example through a shared volume.
//! Partitions added to the topic after start are not followed until a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use sha2::{Digest, Sha256};
use spamflow_core::{Model, ModelError};
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::KafkaArgs;
use spamflow_runtime::metrics::{self, Metrics};
use spamflow_runtime::pipeline::{self, Backoff, Stopping};

use crate::Detector;

/// Name under which the trainer announces its model, and which detectors follow by default.
pub const DEFAULT_MODEL_NAME: &str = "default";
/// Largest model file accepted, in bytes. The shipped model is about 330 KiB.
pub const MAX_MODEL_BYTES: u64 = 256 * 1024 * 1024;
/// How long one metadata request for the models topic may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Outcomes counted in `spamflow_model_announcements_total`.
const OUTCOME_APPLIED: &str = "applied";
const OUTCOME_CURRENT: &str = "current";
const OUTCOME_IGNORED: &str = "ignored";
const OUTCOME_REJECTED: &str = "rejected";
const OUTCOME_SUPERSEDED: &str = "superseded";

/// Whether the detector follows the models topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelUpdates {
    /// Follow when Kafka brokers are configured (flag or environment), not otherwise.
    Auto,
    On,
    Off,
}

impl ModelUpdates {
    /// Returns whether to follow, given whether brokers were configured explicitly.
    pub fn enabled(self, brokers_configured: bool) -> bool {
        match self {
            Self::Auto => brokers_configured,
            Self::On => true,
            Self::Off => false,
        }
    }
}

/// Reasons an announcement is rejected.
#[derive(Debug, thiserror::Error)]
pub enum AnnouncementError {
    #[error("record has no value")]
    NoValue,
    #[error("value is not a spamflow.v1.ModelAnnouncement: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("announcement has an empty {0}")]
    MissingField(&'static str),
    #[error(
        "location `{0}` is not a local file path; only absolute paths and file:// URLs are \
         supported"
    )]
    UnsupportedLocation(String),
    #[error("failed to read model file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {path} is {size} bytes, above the limit of {MAX_MODEL_BYTES}")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("sha256 of model file {path} is {actual}, but the announcement says {expected}")]
    Sha256Mismatch {
        path: PathBuf,
        actual: String,
        expected: String,
    },
    #[error("model file {path} is invalid: {source}")]
    InvalidModel { path: PathBuf, source: ModelError },
    #[error("model file {path} holds version {found}, but the announcement says {announced}")]
    VersionMismatch {
        path: PathBuf,
        found: String,
        announced: String,
    },
}

/// Returns the file path an announcement's location names.
///
/// # Errors
///
/// Returns [`AnnouncementError::UnsupportedLocation`] for anything but an absolute path or a
/// `file://` URL of one.
pub fn location_path(location: &str) -> Result<PathBuf, AnnouncementError> {
    let path = Path::new(location.strip_prefix("file://").unwrap_or(location));
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(AnnouncementError::UnsupportedLocation(location.to_owned()))
    }
}

/// Checks an announcement's fields, reads the model file it names, verifies its sha256 and
/// loads the model.
///
/// # Errors
///
/// Returns the [`AnnouncementError`] that names the first problem found.
pub fn load_announced(announcement: &pb::ModelAnnouncement) -> Result<Model, AnnouncementError> {
    for (field, value) in [
        ("model_version", &announcement.model_version),
        ("location", &announcement.location),
        ("sha256", &announcement.sha256),
    ] {
        if value.trim().is_empty() {
            return Err(AnnouncementError::MissingField(field));
        }
    }

    let path = location_path(&announcement.location)?;
    let read_error = |source| AnnouncementError::Read {
        path: path.clone(),
        source,
    };
    let size = std::fs::metadata(&path).map_err(read_error)?.len();
    if size > MAX_MODEL_BYTES {
        return Err(AnnouncementError::TooLarge { path, size });
    }

    let bytes = std::fs::read(&path).map_err(read_error)?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(announcement.sha256.trim()) {
        return Err(AnnouncementError::Sha256Mismatch {
            path,
            actual,
            expected: announcement.sha256.clone(),
        });
    }

    let json = String::from_utf8_lossy(&bytes);
    let model = Model::from_json(&json).map_err(|source| AnnouncementError::InvalidModel {
        path: path.clone(),
        source,
    })?;
    if model.version() != announcement.model_version {
        return Err(AnnouncementError::VersionMismatch {
            path,
            found: model.version().to_owned(),
            announced: announcement.model_version.clone(),
        });
    }
    Ok(model)
}

/// Follows the models topic until `stopping` is raised, swapping each valid new version of
/// `model_name` into `detector`. Waits with backoff while the broker or the topic is missing,
/// and retries failed reads.
///
/// # Errors
///
/// Fails when the consumer cannot be created or assigned.
pub async fn follow(
    detector: Detector,
    kafka: &KafkaArgs,
    model_name: &str,
    mut stopping: Stopping,
) -> anyhow::Result<()> {
    let topic = kafka.topics().models;
    let mut config = kafka.client_config()?;
    // A group of its own, never committed: every replica reads the whole topic at every start.
    config
        .set(
            "group.id",
            format!(
                "spam-detector-{}-{}",
                std::process::id(),
                spamflow_runtime::now_ms()
            ),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    let consumer: StreamConsumer = config
        .create()
        .context("failed to create the models topic consumer")?;

    let Some(partitions) = wait_for_partitions(&consumer, &topic, &mut stopping).await else {
        return Ok(());
    };
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("failed to assign the partitions of {topic}"))?;
    let mut history = History::default();
    for partition in 0..partitions {
        let watermarks = tokio::task::block_in_place(|| {
            consumer.fetch_watermarks(&topic, partition, METADATA_TIMEOUT)
        });
        match watermarks {
            Ok((_, high)) => {
                history.ends.insert(partition, high);
            }
            // Without the end of the history every announcement is applied, which is slower
            // but ends with the same model.
            Err(error) => {
                tracing::warn!(%error, topic, partition, "Failed to read the end of the announcement history; applying every announcement")
            }
        }
    }
    tracing::info!(
        topic,
        partitions,
        model_name,
        "Following model announcements"
    );

    let backoff = Backoff::default();
    let mut failures = 0;
    loop {
        let received = tokio::select! {
            () = stopping.wait() => return Ok(()),
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => {
                failures = 0;
                let message = message.detach();
                let ours = message.key() == Some(model_name.as_bytes());
                for message in history.accept(message, ours) {
                    apply(&detector, model_name, message);
                }
            }
            // librdkafka reports broker outages here and reconnects by itself, so a failed
            // read is retried rather than ending the updates for the life of the process.
            Err(error) => {
                tracing::warn!(%error, topic, attempt = failures, "Failed to read model announcements; retrying");
                if !pipeline::sleep_or_stop(&backoff, failures, &mut stopping).await {
                    return Ok(());
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}

/// The announcements already in the topic when the detector started.
///
/// A starting detector needs only the newest announcement of its model name. Compaction keeps
/// the newest per key eventually, but the topic may still contain older ones, so those a later
/// record of the history supersedes are skipped instead of loading every version in turn.
#[derive(Debug, Default)]
struct History {
    /// Offset one past the last record of each partition at start.
    ends: HashMap<i32, i64>,
    /// The newest announcement of this detector's model read from the history and not applied.
    latest_held: Option<OwnedMessage>,
}

impl History {
    /// Takes one record, `ours` when it is keyed by this detector's model name, and returns
    /// the records to apply now, in order.
    fn accept(&mut self, message: OwnedMessage, ours: bool) -> Vec<OwnedMessage> {
        let before_end = self
            .ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 < *end);
        if before_end && ours {
            if self.latest_held.replace(message).is_some() {
                count_superseded();
            }
            return Vec::new();
        }
        if before_end {
            return vec![message];
        }
        match self.latest_held.take() {
            Some(_) if ours => {
                count_superseded();
                vec![message]
            }
            Some(held) => vec![held, message],
            None => vec![message],
        }
    }
}

fn count_superseded() {
    Metrics::outcome(&metrics::global().model_announcements, OUTCOME_SUPERSEDED);
}

/// Returns the partition count of `topic` once the broker reports it, or `None` when
/// `stopping` is raised first.
async fn wait_for_partitions(
    consumer: &StreamConsumer,
    topic: &str,
    stopping: &mut Stopping,
) -> Option<i32> {
    let backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        let result =
            tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT));
        let reason = match result {
            Ok(metadata) => match metadata.topics().iter().find(|t| t.name() == topic) {
                Some(found) if found.error().is_none() && !found.partitions().is_empty() => {
                    return Some(found.partitions().len() as i32);
                }
                Some(found) => format!("the broker reports {:?}", found.error()),
                None => "the broker does not list it".to_owned(),
            },
            Err(error) => error.to_string(),
        };
        tracing::warn!(
            topic,
            attempt,
            reason,
            "Models topic is not available yet; retrying"
        );
        if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
            return None;
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Handles one record of the models topic.
fn apply(detector: &Detector, model_name: &str, message: OwnedMessage) {
    let metrics = metrics::global();
    let key = message.key().map(String::from_utf8_lossy);
    if key.as_deref() != Some(model_name) {
        tracing::debug!(key = ?key, offset = message.offset(), "Ignoring an announcement of another model");
        Metrics::outcome(&metrics.model_announcements, OUTCOME_IGNORED);
        return;
    }
    let span = tracing::info_span!(
        "apply_model_announcement",
        partition = message.partition(),
        offset = message.offset(),
        model_version = tracing::field::Empty,
    );
    let _entered = span.enter();
    let announcement = match message.payload().map(pb::ModelAnnouncement::decode) {
        Some(Ok(announcement)) => announcement,
        Some(Err(error)) => return reject(&message, &AnnouncementError::Decode(error)),
        None => return reject(&message, &AnnouncementError::NoValue),
    };
    span.record("model_version", announcement.model_version.as_str());
    if detector.model().version() == announcement.model_version {
        tracing::debug!(model_version = %announcement.model_version, "Announced model is already served");
        Metrics::outcome(&metrics.model_announcements, OUTCOME_CURRENT);
        return;
    }
    // Reading and parsing a model file blocks for milliseconds; keep it off the async workers.
    let loaded = tokio::task::block_in_place(|| load_announced(&announcement));
    match loaded {
        Ok(model) => {
            detector.swap_model(model);
            Metrics::outcome(&metrics.model_announcements, OUTCOME_APPLIED);
        }
        Err(error) => reject(&message, &error),
    }
}

fn reject(message: &OwnedMessage, error: &AnnouncementError) {
    tracing::warn!(
        %error,
        error_code = "model_announcement_rejected",
        partition = message.partition(),
        offset = message.offset(),
        "Rejected a model announcement; the current model stays"
    );
    Metrics::outcome(&metrics::global().model_announcements, OUTCOME_REJECTED);
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamflow_testkit::ScratchDir;

    fn write_model(dir: &Path, version: &str) -> (PathBuf, String) {
        let json = crate::DEFAULT_MODEL_JSON.replacen(
            &format!(
                "\"model_version\":\"{}\"",
                crate::default_model().unwrap().version()
            ),
            &format!("\"model_version\":\"{version}\""),
            1,
        );
        let path = dir.join(format!("model-{version}.json"));
        std::fs::write(&path, &json).unwrap();
        (path, hex::encode(Sha256::digest(json.as_bytes())))
    }

    fn announcement(path: &Path, version: &str, sha256: &str) -> pb::ModelAnnouncement {
        pb::ModelAnnouncement {
            model_version: version.to_owned(),
            location: path.display().to_string(),
            sha256: sha256.to_owned(),
            created_at_ms: 1,
        }
    }

    #[test]
    fn valid_announcement_loads() {
        let dir = ScratchDir::new("updates-valid");
        let (path, sha256) = write_model(&dir, "lr2-test-1");
        let model = load_announced(&announcement(&path, "lr2-test-1", &sha256)).unwrap();
        assert_eq!(model.version(), "lr2-test-1");
        let with_scheme = announcement(&path, "lr2-test-1", &sha256);
        let with_scheme = pb::ModelAnnouncement {
            location: format!("file://{}", with_scheme.location),
            ..with_scheme
        };
        assert!(load_announced(&with_scheme).is_ok());
    }

    #[test]
    fn bad_announcements_name_the_problem() {
        let dir = ScratchDir::new("updates-bad");
        let (path, sha256) = write_model(&dir, "lr2-test-2");
        let garbage = dir.join("garbage.json");
        std::fs::write(&garbage, b"{not json").unwrap();
        let garbage_sha = hex::encode(Sha256::digest(b"{not json"));
        let cases = [
            (announcement(&path, "", &sha256), "empty model_version"),
            (announcement(&path, "lr2-test-2", ""), "empty sha256"),
            (
                pb::ModelAnnouncement {
                    location: "models/model.json".into(),
                    ..announcement(&path, "lr2-test-2", &sha256)
                },
                "not a local file path",
            ),
            (
                announcement(&dir.join("missing.json"), "lr2-test-2", &sha256),
                "failed to read",
            ),
            (
                announcement(&path, "lr2-test-2", &"0".repeat(64)),
                "sha256 of model file",
            ),
            (
                announcement(&garbage, "lr2-test-2", &garbage_sha),
                "is invalid",
            ),
            (
                announcement(&path, "lr2-other", &sha256),
                "holds version lr2-test-2",
            ),
        ];
        for (announcement, expected) in cases {
            let error = load_announced(&announcement).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    fn record(key: &str, partition: i32, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            Some(offset.to_string().into_bytes()),
            Some(key.as_bytes().to_vec()),
            "models".into(),
            rdkafka::Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    fn offsets(messages: &[OwnedMessage]) -> Vec<(i32, i64)> {
        messages
            .iter()
            .map(|message| (message.partition(), message.offset()))
            .collect()
    }

    #[test]
    fn history_applies_only_newest_of_ours() {
        let mut history = History::default();
        history.ends.insert(0, 3);
        history.ends.insert(1, 1);
        // Partition 0 contains ours at 0 and 1 and another model at 2. Partition 1 is empty.
        assert!(history.accept(record("default", 0, 0), true).is_empty());
        assert!(history.accept(record("default", 0, 1), true).is_empty());
        assert_eq!(
            offsets(&history.accept(record("other", 0, 2), false)),
            [(0, 1), (0, 2)]
        );
        // Live records pass straight through.
        assert_eq!(
            offsets(&history.accept(record("default", 0, 3), true)),
            [(0, 3)]
        );
    }

    #[test]
    fn history_ending_with_ours_applies_it_alone() {
        let mut history = History::default();
        history.ends.insert(0, 2);
        assert!(history.accept(record("default", 0, 0), true).is_empty());
        assert_eq!(
            offsets(&history.accept(record("default", 0, 1), true)),
            [(0, 1)]
        );
        assert!(history.latest_held.is_none());
    }

    #[test]
    fn unknown_history_end_applies_everything() {
        let mut history = History::default();
        assert_eq!(
            offsets(&history.accept(record("default", 0, 0), true)),
            [(0, 0)]
        );
        assert_eq!(
            offsets(&history.accept(record("other", 0, 1), false)),
            [(0, 1)]
        );
    }

    #[test]
    fn auto_follows_only_configured_brokers() {
        assert!(ModelUpdates::Auto.enabled(true));
        assert!(!ModelUpdates::Auto.enabled(false));
        assert!(ModelUpdates::On.enabled(false));
        assert!(!ModelUpdates::Off.enabled(true));
    }
}

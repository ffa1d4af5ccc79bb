//! Retraining: the training set (base corpus plus stored corrections), the refit, the model
//! file and its announcement on the models topic, and the schedule that decides when to run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sha2::{Digest, Sha256};
use spamflow_core::model::Example;
use spamflow_core::refit::refit;
use spamflow_core::{Email, Label, Limits, Model};
use spamflow_proto::v1 as pb;
use spamflow_runtime::metrics::{self, Metrics};
use spamflow_runtime::pipeline::{self, Backoff, Stopping};
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::store::{CorrectionStore, StoredCorrection, write_atomic};

/// Prefix and suffix of the model files the trainer writes: `model-<version>.json`.
pub const MODEL_FILE_PREFIX: &str = "model-";
pub const MODEL_FILE_SUFFIX: &str = ".json";

/// Messages to train on, and how they were gathered.
#[derive(Debug)]
pub struct TrainingSet {
    pub examples: Vec<Example>,
    /// Messages read from the base corpus, before corrections replaced any.
    pub base_messages: usize,
    pub corrections: usize,
    /// Files skipped because they are too large or do not parse.
    pub skipped: usize,
}

/// A model written by a retrain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrained {
    pub version: String,
    pub path: PathBuf,
    /// sha256 of the model file, lowercase hex.
    pub sha256: String,
    pub messages: u64,
}

/// Reads the base corpus (`ham/` and `spam/` below `base_corpus`, searched recursively) and the
/// stored corrections into examples. A correction replaces a base message with the same bytes,
/// so a user's label wins over the corpus label. The order is stable: by sha256 of the message.
///
/// # Errors
///
/// Fails naming the folder or file that cannot be read.
pub fn load_training_set(
    base_corpus: Option<&Path>,
    corrections: &[StoredCorrection],
    limits: Limits,
) -> anyhow::Result<TrainingSet> {
    let mut by_digest: BTreeMap<[u8; 32], Example> = BTreeMap::new();
    let mut skipped = 0;
    let mut base_messages = 0;
    let mut add = |path: &Path, label: Label, by_digest: &mut BTreeMap<[u8; 32], Example>| {
        let raw = std::fs::read(path)
            .with_context(|| format!("failed to read training message {}", path.display()))?;
        match Email::parse(&raw, limits) {
            Ok(email) => {
                let example = Example::new(&email, label, &raw);
                by_digest.insert(example.sha256, example);
                Ok(true)
            }
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "Skipping a training message that does not parse");
                skipped += 1;
                Ok::<bool, anyhow::Error>(false)
            }
        }
    };
    if let Some(corpus) = base_corpus {
        for label in [Label::Ham, Label::Spam] {
            for path in files_below(&corpus.join(label.as_str()))? {
                if add(&path, label, &mut by_digest)? {
                    base_messages += 1;
                }
            }
        }
    }
    for correction in corrections {
        add(&correction.path, correction.label, &mut by_digest)?;
    }
    Ok(TrainingSet {
        examples: by_digest.into_values().collect(),
        base_messages,
        corrections: corrections.len(),
        skipped,
    })
}

/// Lists the regular files below `dir`, recursively and sorted, skipping hidden names.
fn files_below(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("failed to read corpus folder {}", current.display()))?;
        for entry in entries {
            let entry = entry
                .with_context(|| format!("failed to read corpus folder {}", current.display()))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Refits `parent` on the base corpus plus every stored correction and writes
/// `model-<version>.json` into `model_dir` atomically.
///
/// # Errors
///
/// Fails when the training set cannot be read, the refit fails (for example when it lacks a
/// class), or the model file cannot be written.
pub fn retrain(
    parent: &Model,
    base_corpus: Option<&Path>,
    store: &CorrectionStore,
    model_dir: &Path,
    limits: Limits,
) -> anyhow::Result<Retrained> {
    let corrections = store.list()?;
    let set = load_training_set(base_corpus, &corrections, limits)?;
    tracing::info!(
        base_messages = set.base_messages,
        corrections = set.corrections,
        skipped = set.skipped,
        examples = set.examples.len(),
        "Retraining"
    );
    let model = refit(
        &set.examples,
        parent,
        spamflow_runtime::timefmt::now_rfc3339(),
    )
    .with_context(|| format!("failed to refit model {}", parent.version()))?;
    let json = model.to_json();
    let path = model_dir.join(format!(
        "{MODEL_FILE_PREFIX}{}{MODEL_FILE_SUFFIX}",
        model.version()
    ));
    write_atomic(&path, json.as_bytes()).context("failed to write the model file")?;
    Ok(Retrained {
        version: model.version().to_owned(),
        path,
        sha256: hex::encode(Sha256::digest(json.as_bytes())),
        messages: model.training().messages,
    })
}

/// Counts corrections stored since the last retrain and wakes the schedule.
#[derive(Debug, Default)]
pub struct Pending {
    count: AtomicU64,
    notify: Notify,
}

impl Pending {
    /// Counts `new` corrections and wakes the schedule.
    pub fn add(&self, new: u64) {
        let count = self.count.fetch_add(new, Ordering::AcqRel) + new;
        metrics::global().feedback_pending.set(count as i64);
        self.notify.notify_one();
    }

    /// Subtracts corrections a retrain covered.
    fn covered(&self, done: u64) {
        let count = self.count.fetch_sub(done, Ordering::AcqRel) - done;
        metrics::global().feedback_pending.set(count as i64);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

/// Returns how many stored corrections are newer than the newest model file in `model_dir`,
/// so corrections stored before a restart still lead to a retrain.
///
/// # Errors
///
/// Fails naming the folder when it cannot be read.
pub fn pending_at_start(store: &CorrectionStore, model_dir: &Path) -> anyhow::Result<u64> {
    let newest_model = std::fs::read_dir(model_dir)
        .with_context(|| format!("failed to read model folder {}", model_dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with(MODEL_FILE_PREFIX) && name.ends_with(MODEL_FILE_SUFFIX)
        })
        .filter_map(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let newer = store
        .list()?
        .iter()
        .filter(|correction| {
            std::fs::metadata(&correction.path)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified > newest_model)
        })
        .count();
    Ok(newer as u64)
}

/// When to retrain, and what with.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Retrain as soon as this many new corrections are stored.
    pub after_corrections: u64,
    /// Retrain when this much time has passed with at least one new correction.
    pub interval: Duration,
    pub parent: Arc<Model>,
    pub base_corpus: Option<PathBuf>,
    pub model_dir: PathBuf,
    pub limits: Limits,
    pub model_name: String,
    pub models_topic: String,
}

/// Retrains on the schedule and announces each new model until `stopping` is raised.
pub async fn run_schedule(
    schedule: Schedule,
    store: CorrectionStore,
    pending: Arc<Pending>,
    producer: FutureProducer,
    mut stopping: Stopping,
) {
    let mut deadline = tokio::time::Instant::now() + schedule.interval;
    loop {
        let mut interval_passed = false;
        tokio::select! {
            () = stopping.wait() => return,
            () = pending.notify.notified() => {}
            () = tokio::time::sleep_until(deadline) => interval_passed = true,
        }
        let count = pending.count();
        let due = count >= schedule.after_corrections || (interval_passed && count > 0);
        if interval_passed || due {
            deadline = tokio::time::Instant::now() + schedule.interval;
        }
        if !due {
            continue;
        }
        let span = tracing::info_span!(
            "retrain_model",
            corrections = count,
            parent_version = schedule.parent.version(),
            model_version = tracing::field::Empty,
        );
        let task = {
            let (schedule, store) = (schedule.clone(), store.clone());
            tokio::task::spawn_blocking(move || {
                retrain(
                    &schedule.parent,
                    schedule.base_corpus.as_deref(),
                    &store,
                    &schedule.model_dir,
                    schedule.limits,
                )
            })
            .instrument(span.clone())
        };
        // A retrain on a large base corpus takes minutes, longer than a container's stop
        // timeout, so shutdown does not wait for it. The corrections stay stored, and the next
        // start retrains them.
        let retrained = tokio::select! {
            retrained = task => retrained,
            () = stopping.wait() => {
                tracing::warn!(
                    corrections = count,
                    "Shutting down during a retrain; it is abandoned and its model is not announced"
                );
                return;
            }
        };
        let retrained = match retrained {
            Ok(Ok(retrained)) => retrained,
            Ok(Err(error)) => {
                retrain_failed(&spamflow_runtime::cli::error_chain(&error));
                continue;
            }
            Err(error) => {
                retrain_failed(&format!("the retrain task failed: {error}"));
                continue;
            }
        };
        span.record("model_version", retrained.version.as_str());
        tracing::info!(
            model_version = %retrained.version,
            path = %retrained.path.display(),
            messages = retrained.messages,
            "Wrote a retrained model"
        );
        let announced = announce(
            &producer,
            &schedule.models_topic,
            &schedule.model_name,
            &retrained,
            &mut stopping,
        )
        .instrument(span)
        .await;
        if !announced {
            return;
        }
        pending.covered(count);
        Metrics::outcome(&metrics::global().model_retrains, "published");
    }
}

fn retrain_failed(error: &str) {
    tracing::error!(
        error,
        error_code = "retrain_failed",
        "Retraining failed; the current model stays and the next correction retries"
    );
    Metrics::outcome(&metrics::global().model_retrains, "failed");
}

/// Publishes a `ModelAnnouncement` keyed by `model_name`, retrying until Kafka acknowledges it.
/// Returns false when `stopping` interrupted it.
async fn announce(
    producer: &FutureProducer,
    topic: &str,
    model_name: &str,
    retrained: &Retrained,
    stopping: &mut Stopping,
) -> bool {
    let payload = pb::ModelAnnouncement {
        model_version: retrained.version.clone(),
        location: retrained.path.display().to_string(),
        sha256: retrained.sha256.clone(),
        created_at_ms: spamflow_runtime::now_ms(),
    }
    .encode_to_vec();
    let backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        let record = FutureRecord::to(topic)
            .key(model_name)
            .payload(&payload)
            .headers(spamflow_runtime::propagation::inject_kafka(
                OwnedHeaders::new(),
            ));
        match producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
        {
            Ok(delivery) => {
                metrics::global().produced(topic);
                tracing::info!(
                    model_version = %retrained.version,
                    topic,
                    partition = delivery.partition,
                    offset = delivery.offset,
                    "Announced the model"
                );
                return true;
            }
            Err((error, _)) => {
                tracing::warn!(%error, topic, attempt, "Failed to announce the model; retrying");
                if !pipeline::sleep_or_stop(&backoff, attempt, stopping).await {
                    return false;
                }
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamflow_testkit::ScratchDir;

    fn message(subject: &str, body: &str) -> Vec<u8> {
        format!("From: a@example.net\nSubject: {subject}\n\n{body}\n").into_bytes()
    }

    #[test]
    fn correction_replaces_base_label() {
        let dir = ScratchDir::new("trainer-retrain-replace");
        let corpus = dir.join("corpus");
        for label in ["ham", "spam"] {
            std::fs::create_dir_all(corpus.join(label).join("nested")).unwrap();
        }
        let disputed = message("offer", "cheap watches for sale today");
        std::fs::write(corpus.join("spam/nested/1"), &disputed).unwrap();
        std::fs::write(corpus.join("spam/2"), message("win", "win money")).unwrap();
        std::fs::write(corpus.join("ham/.hidden"), message("x", "hidden")).unwrap();
        std::fs::write(corpus.join("ham/3"), message("notes", "meeting notes")).unwrap();

        let store = CorrectionStore::open(&dir.join("models")).unwrap();
        store.save("box/1", Label::Ham, &disputed).unwrap();
        let set =
            load_training_set(Some(&corpus), &store.list().unwrap(), Limits::default()).unwrap();

        assert_eq!(set.base_messages, 3);
        assert_eq!(set.corrections, 1);
        assert_eq!(set.examples.len(), 3);
        let disputed_digest: [u8; 32] = Sha256::digest(&disputed).into();
        let example = set
            .examples
            .iter()
            .find(|example| example.sha256 == disputed_digest)
            .unwrap();
        assert_eq!(example.label, Label::Ham);
    }

    #[test]
    fn missing_corpus_folder_is_named() {
        let dir = ScratchDir::new("trainer-retrain-missing");
        let error = load_training_set(Some(&dir.join("nothing")), &[], Limits::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("nothing/ham"), "{error}");
    }

    #[test]
    fn corrections_after_newest_model_are_pending() {
        let dir = ScratchDir::new("trainer-retrain-pending");
        let store = CorrectionStore::open(&dir).unwrap();
        store.save("box/1", Label::Spam, b"one").unwrap();
        assert_eq!(pending_at_start(&store, &dir).unwrap(), 1);

        // File times are not ordered within one clock tick, so the model is dated ahead.
        let model = dir.join("model-lr2-x.json");
        std::fs::write(&model, b"{}").unwrap();
        let later = SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&model)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(pending_at_start(&store, &dir).unwrap(), 0);
    }
}

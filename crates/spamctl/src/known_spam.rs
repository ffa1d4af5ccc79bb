//! Known-spam fingerprints for `spamctl eval --known-spam` and `spamctl dev --known-spam`: the
//! Bloom filter's contents after the TRAIN spam were confirmed and the TRAIN ham corrected.
//! `eval` keeps them in memory, and `dev` inserts them into the mesh's Bloom filter.
//!
//! An exact set takes the place of the Bloom filter. At the service's default size (a million
//! items at a false-positive rate of 0.001), the fingerprints of a few thousand messages set
//! about 1% of its bits. A false match needs every bit of a key set, which is then very rare.

use std::collections::HashSet;
use std::path::PathBuf;

use spamflow_core::fingerprint::{FingerprintKind, fingerprints};
use spamflow_core::split::Split;
use spamflow_core::{Email, Label, Limits};

use crate::corpus::{self, CorpusMessage, SplitFilter};
use spamflow_runtime::cli::UsageError;

/// Fingerprints of confirmed spam, without those that a ham message shares.
#[derive(Debug, Default)]
pub struct KnownSpam {
    keys: HashSet<String>,
    /// Spam messages read, those too short for a fingerprint included.
    pub spam_messages: usize,
}

impl KnownSpam {
    /// Adds the fingerprints of every spam message, then removes those of every ham message.
    /// A filter without them matches as one with the trainer's ham overrides for them does.
    /// Messages that do not parse add nothing.
    pub fn from_messages(messages: &[CorpusMessage]) -> Self {
        let mut known = Self::default();
        let mut ham_keys = HashSet::new();
        for message in messages {
            let Ok(email) = Email::parse(&message.raw, Limits::default()) else {
                continue;
            };
            let keys = fingerprints(&email.fingerprint_text())
                .into_iter()
                .map(|fingerprint| fingerprint.bloom_key());
            if message.label == Label::Spam {
                known.keys.extend(keys);
                known.spam_messages += 1;
            } else {
                ham_keys.extend(keys);
            }
        }
        known.keys.retain(|key| !ham_keys.contains(key));
        known
    }

    /// Checks that a command with `--known-spam` judges the TEST split. The fingerprints come
    /// from the TRAIN split, and TRAIN messages would match their own.
    ///
    /// # Errors
    ///
    /// Returns a [`UsageError`] for another split.
    pub fn check_split(split: SplitFilter) -> Result<(), UsageError> {
        if split == SplitFilter::Test {
            return Ok(());
        }
        Err(UsageError(format!(
            "--known-spam takes its fingerprints from the TRAIN split, so it needs --split test, \
             not --split {}",
            split.flag_value()
        )))
    }

    /// Loads the TRAIN messages under the spam and ham paths and returns their known spam. A
    /// corpus without TRAIN messages has none.
    ///
    /// # Errors
    ///
    /// Fails as [`corpus::load`] does on the whole corpus.
    pub fn from_train_split(spam: &[PathBuf], ham: &[PathBuf]) -> anyhow::Result<Self> {
        let mut messages = corpus::load(spam, ham, SplitFilter::All)?;
        messages.retain(|message| Split::of(&message.name) == Split::Train);
        Ok(Self::from_messages(&messages))
    }

    /// Returns the Bloom filter keys of the known-spam fingerprints, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.keys.iter().cloned().collect();
        keys.sort_unstable();
        keys
    }

    /// Returns the kinds of the email's fingerprints that are known spam.
    pub fn matches(&self, email: &Email) -> Vec<FingerprintKind> {
        fingerprints(&email.fingerprint_text())
            .into_iter()
            .filter(|fingerprint| self.keys.contains(&fingerprint.bloom_key()))
            .map(|fingerprint| fingerprint.kind)
            .collect()
    }
}

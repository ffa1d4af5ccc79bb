//! Known-spam fingerprints for `spamctl eval --known-spam`: the Bloom filter's contents after
//! the TRAIN spam were confirmed and the TRAIN ham corrected, held in memory.
//!
//! An exact set takes the place of the Bloom filter. At the service's default size (a million
//! items at a false-positive rate of 0.001), the fingerprints of a few thousand messages set
//! about 1% of its bits. A false match needs every bit of a key set, which is then very rare.

use std::collections::HashSet;

use spamflow_core::fingerprint::{FingerprintKind, fingerprints};
use spamflow_core::{Email, Label, Limits};

use crate::corpus::CorpusMessage;

/// Fingerprints of confirmed spam, without those that a ham message shares.
#[derive(Debug, Default)]
pub struct KnownSpam {
    keys: HashSet<String>,
    /// Spam messages whose fingerprints were added.
    pub spam_messages: usize,
}

impl KnownSpam {
    /// Adds the fingerprints of every spam message, then removes those of every ham message,
    /// as the trainer's ham overrides do. Messages that do not parse add nothing.
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

    /// Returns the kinds of the email's fingerprints that are known spam.
    pub fn matches(&self, email: &Email) -> Vec<FingerprintKind> {
        fingerprints(&email.fingerprint_text())
            .into_iter()
            .filter(|fingerprint| self.keys.contains(&fingerprint.bloom_key()))
            .map(|fingerprint| fingerprint.kind)
            .collect()
    }
}

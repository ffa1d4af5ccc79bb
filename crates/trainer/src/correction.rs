//! A user's correction, converted from a `FeedbackEvent` at the edge: the label, the message
//! and the fingerprints the Bloom filter needs.

use spamflow_core::fingerprint::{self, Fingerprint, FingerprintKind};
use spamflow_core::{Email, EmailError, Label, Limits};
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::record_key;

/// Reasons a feedback event cannot be used. Each makes the record poison.
#[derive(Debug, thiserror::Error)]
pub enum CorrectionError {
    #[error("feedback has an empty message_id")]
    MissingMessageId,
    #[error("feedback label {0} is neither HAM nor SPAM")]
    InvalidLabel(i32),
    #[error("feedback raw message is invalid: {0}")]
    InvalidRaw(#[from] EmailError),
    #[error("fingerprints[{index}].kind {kind} is not BODY_DIGEST or NEAR_DUPLICATE")]
    InvalidFingerprintKind { index: usize, kind: i32 },
    #[error("fingerprints[{index}].value is empty")]
    EmptyFingerprint { index: usize },
    #[error("feedback has neither a raw message nor fingerprints, so nothing can be learned")]
    Empty,
}

/// One validated correction.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    /// `mailbox/message-id`, the record key of the message.
    pub key: String,
    pub message_id: String,
    pub label: Label,
    /// The whole RFC 5322 message, when the event carried it. Only corrections with the
    /// message can be stored for retraining.
    pub raw: Option<Vec<u8>>,
    /// Fingerprints computed here from `raw` when present, otherwise the event's own.
    pub fingerprints: Vec<Fingerprint>,
}

impl Correction {
    /// Validates a feedback event. Fingerprints come from the raw message when the event has
    /// one, because the Bloom filter must hold exactly what the email processor computes.
    ///
    /// # Errors
    ///
    /// Returns the [`CorrectionError`] of the first invalid field.
    pub fn from_event(event: pb::FeedbackEvent, limits: Limits) -> Result<Self, CorrectionError> {
        if event.message_id.trim().is_empty() {
            return Err(CorrectionError::MissingMessageId);
        }
        let label = match pb::Label::try_from(event.label) {
            Ok(pb::Label::Ham) => Label::Ham,
            Ok(pb::Label::Spam) => Label::Spam,
            _ => return Err(CorrectionError::InvalidLabel(event.label)),
        };
        let (raw, fingerprints) = if event.raw.is_empty() {
            (None, event_fingerprints(&event.fingerprints)?)
        } else {
            let email = Email::parse(&event.raw, limits)?;
            (
                Some(event.raw),
                fingerprint::fingerprints(&email.fingerprint_text()),
            )
        };
        if raw.is_none() && fingerprints.is_empty() {
            return Err(CorrectionError::Empty);
        }
        Ok(Self {
            key: record_key(&event.mailbox, &event.message_id),
            message_id: event.message_id,
            label,
            raw,
            fingerprints,
        })
    }
}

/// Validates fingerprints sent in an event.
fn event_fingerprints(
    fingerprints: &[pb::Fingerprint],
) -> Result<Vec<Fingerprint>, CorrectionError> {
    fingerprints
        .iter()
        .enumerate()
        .map(|(index, print)| {
            let kind = match pb::FingerprintKind::try_from(print.kind) {
                Ok(pb::FingerprintKind::BodyDigest) => FingerprintKind::BodyDigest,
                Ok(pb::FingerprintKind::NearDuplicate) => FingerprintKind::NearDuplicate,
                _ => {
                    return Err(CorrectionError::InvalidFingerprintKind {
                        index,
                        kind: print.kind,
                    });
                }
            };
            let value = print.value.trim();
            if value.is_empty() {
                return Err(CorrectionError::EmptyFingerprint { index });
            }
            Ok(Fingerprint {
                kind,
                value: value.to_owned(),
            })
        })
        .collect()
}

/// Converts fingerprints to their protobuf form for the Bloom filter.
pub fn to_proto(fingerprints: &[Fingerprint]) -> Vec<pb::Fingerprint> {
    fingerprints
        .iter()
        .cloned()
        .map(spamflow_runtime::convert::fingerprint)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "From: a@example.net\nTo: b@example.org\nSubject: offer\n\n\
        Claim your free prize money now, limited time offer, click the link below today.\n";

    fn event(label: pb::Label) -> pb::FeedbackEvent {
        pb::FeedbackEvent {
            mailbox: "me@example.org".into(),
            message_id: "18c0ffee".into(),
            label: label as i32,
            fingerprints: Vec::new(),
            raw: RAW.as_bytes().to_vec(),
            created_at_ms: 1,
        }
    }

    #[test]
    fn raw_feedback_gets_own_fingerprints() {
        let correction = Correction::from_event(event(pb::Label::Spam), Limits::default()).unwrap();
        assert_eq!(correction.key, "me@example.org/18c0ffee");
        assert_eq!(correction.label, Label::Spam);
        assert!(
            correction
                .fingerprints
                .iter()
                .any(|print| print.kind == FingerprintKind::BodyDigest),
            "{correction:?}"
        );
    }

    #[test]
    fn fingerprints_alone_are_accepted() {
        let correction = Correction::from_event(
            pb::FeedbackEvent {
                raw: Vec::new(),
                fingerprints: vec![pb::Fingerprint {
                    kind: pb::FingerprintKind::BodyDigest as i32,
                    value: " ab12 ".into(),
                }],
                ..event(pb::Label::Ham)
            },
            Limits::default(),
        )
        .unwrap();
        assert_eq!(correction.raw, None);
        assert_eq!(correction.fingerprints[0].value, "ab12");
    }

    #[test]
    fn invalid_events_name_the_field() {
        let cases = [
            (
                pb::FeedbackEvent {
                    message_id: " ".into(),
                    ..event(pb::Label::Spam)
                },
                "message_id",
            ),
            (event(pb::Label::Unspecified), "label 0"),
            (
                pb::FeedbackEvent {
                    raw: b"\x00\x01 not a message".to_vec(),
                    ..event(pb::Label::Spam)
                },
                "raw message is invalid",
            ),
            (
                pb::FeedbackEvent {
                    raw: Vec::new(),
                    ..event(pb::Label::Spam)
                },
                "neither a raw message nor fingerprints",
            ),
            (
                pb::FeedbackEvent {
                    raw: Vec::new(),
                    fingerprints: vec![pb::Fingerprint {
                        kind: 7,
                        value: "x".into(),
                    }],
                    ..event(pb::Label::Spam)
                },
                "fingerprints[0].kind 7",
            ),
            (
                pb::FeedbackEvent {
                    raw: Vec::new(),
                    fingerprints: vec![pb::Fingerprint {
                        kind: pb::FingerprintKind::NearDuplicate as i32,
                        value: String::new(),
                    }],
                    ..event(pb::Label::Spam)
                },
                "fingerprints[0].value",
            ),
        ];
        for (event, expected) in cases {
            let error = Correction::from_event(event, Limits::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}

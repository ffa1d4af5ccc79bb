//! The verdict policy: how a model score and Bloom filter matches combine into one label.

use crate::fingerprint::FingerprintKind;
use crate::model::Label;

/// The rule that decided a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The model's probability alone decided.
    Model,
    /// The exact body digest is a known spam fingerprint.
    BloomBodyDigest,
    /// A near-duplicate signature matched and the model leaned toward spam.
    BloomNearDuplicate,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::BloomBodyDigest => "bloom_body_digest",
            Self::BloomNearDuplicate => "bloom_near_duplicate",
        }
    }
}

/// A combined decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub label: Label,
    pub reason: Reason,
}

/// Combines the model's probability with the kinds of Bloom filter matches.
///
/// An exact digest match of confirmed spam is spam whatever the model scores. A near-duplicate
/// match is weaker evidence, since Bloom filters have false positives and bands can collide,
/// so it lowers the threshold to half instead of deciding alone.
///
/// NOTE: `threshold` is the message's own, so for list mail it is the model's list mail
/// threshold, and a near-duplicate match then flags list mail from half of that (0.17 with the
/// shipped model). On TEST no ham had such a match (`spamctl eval --known-spam`); other mail
/// may.
pub fn decide(probability: f64, threshold: f64, matches: &[FingerprintKind]) -> Decision {
    if matches.contains(&FingerprintKind::BodyDigest) {
        return Decision {
            label: Label::Spam,
            reason: Reason::BloomBodyDigest,
        };
    }
    if probability >= threshold {
        return Decision {
            label: Label::Spam,
            reason: Reason::Model,
        };
    }
    if matches.contains(&FingerprintKind::NearDuplicate) && probability >= threshold / 2.0 {
        return Decision {
            label: Label::Spam,
            reason: Reason::BloomNearDuplicate,
        };
    }
    Decision {
        label: Label::Ham,
        reason: Reason::Model,
    }
}

/// Returns a score that reaches a threshold exactly when [`decide`] labels the message spam
/// at that threshold: 1 for an exact digest match, twice the probability (at most 1) for a
/// near-duplicate match, else the probability. Ranking by it gives the ROC curve of the
/// combined verdict rather than of the model alone.
pub fn decision_score(probability: f64, matches: &[FingerprintKind]) -> f64 {
    if matches.contains(&FingerprintKind::BodyDigest) {
        1.0
    } else if matches.contains(&FingerprintKind::NearDuplicate) {
        (2.0 * probability).min(1.0)
    } else {
        probability
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_score_agrees_with_decide() {
        let cases: [&[FingerprintKind]; 4] = [
            &[],
            &[FingerprintKind::NearDuplicate],
            &[FingerprintKind::BodyDigest],
            &[FingerprintKind::NearDuplicate, FingerprintKind::BodyDigest],
        ];
        for matches in cases {
            for p in 0..=100 {
                let probability = f64::from(p) / 100.0;
                for t in 1..=100 {
                    let threshold = f64::from(t) / 100.0;
                    let spam = decide(probability, threshold, matches).label == Label::Spam;
                    assert_eq!(
                        decision_score(probability, matches) >= threshold,
                        spam,
                        "p {probability}, threshold {threshold}, {matches:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn digest_match_forces_spam() {
        let decision = decide(0.01, 0.5, &[FingerprintKind::BodyDigest]);
        assert_eq!(decision.label, Label::Spam);
        assert_eq!(decision.reason, Reason::BloomBodyDigest);
    }

    #[test]
    fn near_duplicate_lowers_threshold() {
        assert_eq!(
            decide(0.3, 0.5, &[FingerprintKind::NearDuplicate]).label,
            Label::Spam
        );
        assert_eq!(
            decide(0.2, 0.5, &[FingerprintKind::NearDuplicate]).label,
            Label::Ham
        );
    }

    #[test]
    fn model_decides_without_matches() {
        assert_eq!(decide(0.5, 0.5, &[]).label, Label::Spam);
        assert_eq!(decide(0.49, 0.5, &[]).label, Label::Ham);
    }
}

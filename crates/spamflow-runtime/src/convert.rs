//! Conversions from spamflow-core types to their protobuf form on the wire.

use spamflow_core::fingerprint::{self, Fingerprint, FingerprintKind};
use spamflow_proto::v1 as pb;

/// Converts one fingerprint to its protobuf form.
pub fn fingerprint(print: Fingerprint) -> pb::Fingerprint {
    let kind = match print.kind {
        FingerprintKind::BodyDigest => pb::FingerprintKind::BodyDigest,
        FingerprintKind::NearDuplicate => pb::FingerprintKind::NearDuplicate,
    };
    pb::Fingerprint {
        kind: kind as i32,
        value: print.value,
    }
}

/// Computes the fingerprints of a message body and converts them to their protobuf form.
pub fn body_fingerprints(body_text: &str) -> Vec<pb::Fingerprint> {
    fingerprint::fingerprints(body_text)
        .into_iter()
        .map(fingerprint)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_fingerprints_keep_kinds() {
        let body = "Claim your prize now, click the link below to receive the money today.";
        let prints = body_fingerprints(body);
        let core = fingerprint::fingerprints(body);
        assert_eq!(prints.len(), core.len());
        for (wire, print) in prints.iter().zip(&core) {
            assert_eq!(wire.value, print.value);
            let expected = match print.kind {
                FingerprintKind::BodyDigest => pb::FingerprintKind::BodyDigest,
                FingerprintKind::NearDuplicate => pb::FingerprintKind::NearDuplicate,
            };
            assert_eq!(wire.kind, expected as i32);
        }
    }
}

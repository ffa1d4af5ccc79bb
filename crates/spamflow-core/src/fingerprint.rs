//! Fingerprints of a message body for the Bloom filter of known spam.
//!
//! Two kinds: an exact digest of the normalized body, and near-duplicate signatures from
//! MinHash over word shingles, cut into bands (locality-sensitive hashing). Two bodies that
//! share most of their shingles very likely share at least one band, so a spam campaign that
//! varies a name or a link still matches.

use sha2::{Digest, Sha256};

/// Bodies whose normalized text is shorter than this get no fingerprints: short texts such
/// as "thanks" or an empty body would collide across unrelated messages.
pub const MIN_NORMALIZED_CHARS: usize = 40;
/// Words per shingle.
const SHINGLE_WORDS: usize = 3;
/// Bodies with fewer shingles than this get no near-duplicate signature.
const MIN_SHINGLES: usize = 8;
/// MinHash functions, cut into `BANDS` bands of `ROWS` rows. With 8 bands of 4 rows, two
/// bodies with Jaccard similarity 0.8 share a band with probability 1 - (1 - 0.8^4)^8 ≈ 0.98,
/// and bodies with similarity 0.3 with probability ≈ 0.06.
const BANDS: usize = 8;
const ROWS: usize = 4;

/// The kind of content a fingerprint digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FingerprintKind {
    BodyDigest,
    NearDuplicate,
}

impl FingerprintKind {
    /// Short prefix used in Bloom filter keys.
    pub fn key_prefix(self) -> &'static str {
        match self {
            Self::BodyDigest => "body",
            Self::NearDuplicate => "near",
        }
    }
}

/// One fingerprint of a body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint {
    pub kind: FingerprintKind,
    /// Lowercase hex.
    pub value: String,
}

impl Fingerprint {
    /// Returns the key under which the Bloom filter stores this fingerprint.
    pub fn bloom_key(&self) -> String {
        format!("{}:{}", self.kind.key_prefix(), self.value)
    }
}

/// Lowercases, masks digits as `0`, keeps letters and digits, and collapses everything else
/// to single spaces, so changed whitespace, punctuation or numbers do not change the digest.
pub fn normalize_body(text: &str) -> String {
    let mut normalized = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if pending_space && !normalized.is_empty() {
                normalized.push(' ');
            }
            pending_space = false;
            if c.is_numeric() {
                normalized.push('0');
            } else {
                normalized.extend(c.to_lowercase());
            }
        } else {
            pending_space = true;
        }
    }
    normalized
}

/// Returns the fingerprints of a body text: none for short bodies, a digest for longer ones,
/// and near-duplicate band signatures when the body has enough words.
pub fn fingerprints(body_text: &str) -> Vec<Fingerprint> {
    let normalized = normalize_body(body_text);
    if normalized.chars().count() < MIN_NORMALIZED_CHARS {
        return Vec::new();
    }
    let mut result = vec![Fingerprint {
        kind: FingerprintKind::BodyDigest,
        value: hex::encode(Sha256::digest(normalized.as_bytes())),
    }];

    let words: Vec<&str> = normalized.split(' ').collect();
    if words.len() < SHINGLE_WORDS + MIN_SHINGLES - 1 {
        return result;
    }
    let mut minimums = [u64::MAX; BANDS * ROWS];
    for shingle in words.windows(SHINGLE_WORDS) {
        let base = fnv1a(shingle.join(" ").as_bytes());
        for (seed, minimum) in minimums.iter_mut().enumerate() {
            let hash = splitmix64(base ^ (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            *minimum = (*minimum).min(hash);
        }
    }
    for (band, rows) in minimums.chunks(ROWS).enumerate() {
        let mut bytes = Vec::with_capacity(ROWS * 8 + 1);
        bytes.push(band as u8);
        for row in rows {
            bytes.extend_from_slice(&row.to_le_bytes());
        }
        result.push(Fingerprint {
            kind: FingerprintKind::NearDuplicate,
            value: format!("{band}-{:016x}", fnv1a(&bytes)),
        });
    }
    result
}

/// 64-bit FNV-1a: stable across platforms and releases, unlike the standard library's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Applies the SplitMix64 finalizer, used to derive independent MinHash functions from one hash.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMPAIGN: &str = "Dear friend, we are pleased to inform you that your email address \
        has won the international lottery draw held this week. To claim your prize of 500000 \
        dollars please reply with your full name, bank details and phone number to our agent \
        before the end of the month or the prize will be returned.";

    #[test]
    fn normalization_ignores_case_digits_and_punctuation() {
        assert_eq!(normalize_body("  Win $1,000 NOW!!  "), "win 0 000 now");
        assert_eq!(
            normalize_body("Win $9,999 now"),
            normalize_body("WIN $1,000 -- now")
        );
    }

    #[test]
    fn short_bodies_have_no_fingerprint() {
        assert!(fingerprints("thanks!").is_empty());
    }

    #[test]
    fn long_bodies_get_digest_and_bands() {
        let prints = fingerprints(CAMPAIGN);
        assert_eq!(prints[0].kind, FingerprintKind::BodyDigest);
        assert_eq!(prints.len(), 1 + BANDS);
    }

    #[test]
    fn small_edit_keeps_a_near_duplicate_band() {
        let edited = CAMPAIGN.replace("Dear friend", "Dear Mr Smith");
        let original = fingerprints(CAMPAIGN);
        let changed = fingerprints(&edited);
        assert_ne!(original[0], changed[0], "digests differ after an edit");
        let shared = original[1..].iter().filter(|p| changed.contains(p)).count();
        assert!(shared >= 1, "no band shared");
    }

    #[test]
    fn unrelated_bodies_share_no_band() {
        let other = "The quarterly build report shows that the compiler upgrade reduced link \
            times on the release branch, while the integration suite still fails on the \
            network tests that depend on the staging resolver configuration.";
        let a = fingerprints(CAMPAIGN);
        let b = fingerprints(other);
        assert!(a.iter().all(|p| !b.contains(p)));
    }

    #[test]
    fn fingerprints_are_stable() {
        // A changed hash would orphan every fingerprint already stored in Redis.
        let prints = fingerprints(CAMPAIGN);
        assert_eq!(
            prints[0].value,
            hex::encode(Sha256::digest(normalize_body(CAMPAIGN).as_bytes()))
        );
        // Published FNV-1a 64-bit test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

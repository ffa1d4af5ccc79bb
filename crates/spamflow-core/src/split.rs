//! The TRAIN/TEST split used by every spamflow evaluation.
//!
//! A message belongs to TEST when the first byte of the sha256 of its file's base name is
//! divisible by 5, else to TRAIN. The rule depends only on the name, so the split is the same
//! on every machine and stays stable when messages are added.

use sha2::{Digest, Sha256};

/// The part of a labelled corpus that a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// Returns the split of a message from its file's base name, for example
    /// `00001.7848dde101aa985090474a91ec93fcf0.txt`.
    pub fn of(base_name: &str) -> Self {
        let digest = Sha256::digest(base_name.as_bytes());
        if digest[0] % 5 == 0 {
            Self::Test
        } else {
            Self::Train
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_first_digest_byte() {
        // sha256("a") starts with 0xca = 202, and 202 % 5 = 2.
        assert_eq!(Split::of("a"), Split::Train);
        // sha256("b") starts with 0x3e = 62, and 62 % 5 = 2.
        assert_eq!(Split::of("b"), Split::Train);
        // sha256 of this name starts with 0x23 = 35, and 35 % 5 = 0.
        assert_eq!(Split::of("00000.txt"), Split::Test);
        let names: Vec<String> = (0..1000).map(|i| format!("{i:05}.txt")).collect();
        let tests = names.iter().filter(|n| Split::of(n) == Split::Test).count();
        // 52 of the 256 byte values are divisible by 5, about 20%.
        assert!((150..=260).contains(&tests), "{tests}");
    }
}

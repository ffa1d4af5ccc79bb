//! Feature vectors: tokens mapped through a bounded vocabulary to sparse, L2-normalized
//! `log(1 + count)` values.
//!
//! The vocabulary is chosen from the training set only and is stored in the model file with
//! the settings below, so scoring always sees exactly the features the model was trained on.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// How tokens become features. Stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    /// Version of the tokenizer in [`crate::tokens`]; a model only scores with the same one.
    pub tokenizer_version: u32,
    /// A token enters the vocabulary only if this many training messages contain it.
    pub min_document_frequency: u32,
    /// At most this many tokens, the most frequent first.
    pub max_vocabulary: u32,
}

impl FeatureSettings {
    /// The tokenizer implemented by this build.
    pub const TOKENIZER_VERSION: u32 = 2;
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            tokenizer_version: Self::TOKENIZER_VERSION,
            min_document_frequency: 3,
            max_vocabulary: 20_000,
        }
    }
}

/// A sparse feature vector: (vocabulary index, value) pairs with distinct indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureVector {
    pub entries: Vec<(u32, f32)>,
}

/// Token → index map, built from training documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocabulary {
    index: HashMap<String, u32>,
    tokens: Vec<String>,
}

impl Vocabulary {
    /// Chooses the vocabulary from tokenized training documents.
    pub fn build<'a>(
        documents: impl IntoIterator<Item = &'a [String]>,
        settings: &FeatureSettings,
    ) -> Self {
        let mut document_frequency: HashMap<&str, u32> = HashMap::new();
        for document in documents {
            let mut seen: Vec<&str> = document.iter().map(String::as_str).collect();
            seen.sort_unstable();
            seen.dedup();
            for token in seen {
                *document_frequency.entry(token).or_default() += 1;
            }
        }
        let mut candidates: Vec<(&str, u32)> = document_frequency
            .into_iter()
            .filter(|(_, count)| *count >= settings.min_document_frequency)
            .collect();
        // Most frequent first; ties broken by token so the result does not depend on hashing.
        candidates.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        candidates.truncate(settings.max_vocabulary as usize);
        candidates.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Self::from_tokens(
            candidates
                .into_iter()
                .map(|(token, _)| token.to_owned())
                .collect(),
        )
    }

    /// Rebuilds a vocabulary from its tokens in index order.
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(position, token)| (token.clone(), position as u32))
            .collect();
        Self { index, tokens }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Returns the token at `index`, if any.
    pub fn token(&self, index: u32) -> Option<&str> {
        self.tokens.get(index as usize).map(String::as_str)
    }

    /// Maps tokens to a feature vector. Tokens outside the vocabulary are ignored.
    pub fn vectorize(&self, tokens: &[String]) -> FeatureVector {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for token in tokens {
            if let Some(&index) = self.index.get(token) {
                *counts.entry(index).or_default() += 1;
            }
        }
        let mut entries: Vec<(u32, f32)> = counts
            .into_iter()
            .map(|(index, count)| (index, (1.0 + count as f32).ln()))
            .collect();
        entries.sort_unstable_by_key(|(index, _)| *index);
        let norm = entries.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, value) in &mut entries {
                *value /= norm;
            }
        }
        FeatureVector { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn vocabulary_keeps_frequent_tokens() {
        let docs = [doc(&["a", "b", "b"]), doc(&["a", "c"]), doc(&["a", "b"])];
        let settings = FeatureSettings {
            min_document_frequency: 2,
            max_vocabulary: 10,
            ..FeatureSettings::default()
        };
        let vocabulary = Vocabulary::build(docs.iter().map(Vec::as_slice), &settings);
        assert_eq!(vocabulary.tokens(), ["a", "b"]);
    }

    #[test]
    fn vocabulary_respects_size_cap() {
        let docs = [doc(&["a", "b"]), doc(&["a", "b"]), doc(&["a"])];
        let settings = FeatureSettings {
            min_document_frequency: 1,
            max_vocabulary: 1,
            ..FeatureSettings::default()
        };
        let vocabulary = Vocabulary::build(docs.iter().map(Vec::as_slice), &settings);
        assert_eq!(vocabulary.tokens(), ["a"]);
    }

    #[test]
    fn vectors_are_unit_length() {
        let vocabulary = Vocabulary::from_tokens(doc(&["a", "b"]));
        let vector = vocabulary.vectorize(&doc(&["a", "a", "b", "zzz"]));
        let norm: f32 = vector.entries.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        assert_eq!(vector.entries.len(), 2);
        assert!(vector.entries[0].1 > vector.entries[1].1);
    }

    #[test]
    fn unknown_tokens_give_empty_vector() {
        let vocabulary = Vocabulary::from_tokens(doc(&["a"]));
        assert!(vocabulary.vectorize(&doc(&["q"])).entries.is_empty());
    }
}

//! Feature vectors: tokens mapped through a bounded vocabulary to sparse, L2-normalized
//! values, either token presence or `log(1 + count)`.
//!
//! The vocabulary is chosen from the training set only, by document frequency or by how
//! strongly a token's presence depends on the class (chi-square), and is stored in the model file with
//! the settings below, so scoring always uses exactly the features the model was trained on.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Settings that turn tokens into features, stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    /// Version of the tokenizer in [`crate::tokens`]; a model only scores with the same one.
    pub tokenizer_version: u32,
    /// A token enters the vocabulary only if this many training messages contain it.
    pub min_document_frequency: u32,
    /// At most this many tokens, ranked by `selection`.
    pub max_vocabulary: u32,
    pub selection: Selection,
    /// The value of each token's entry before normalization. Model files written before this
    /// setting existed used `log_count`.
    #[serde(default = "FeatureValues::log_count")]
    pub values: FeatureValues,
}

/// The value of a token in a feature vector, before the vector is scaled to unit length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureValues {
    /// 1 for every token the message has, however often.
    Presence,
    /// `log(1 + count)`: repeats count, with diminishing weight.
    LogCount,
}

impl FeatureValues {
    fn log_count() -> Self {
        Self::LogCount
    }

    fn of(self, count: u32) -> f32 {
        match self {
            Self::Presence => 1.0,
            Self::LogCount => (1.0 + count as f32).ln(),
        }
    }
}

/// The ranking of candidate tokens for the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Most training messages first.
    DocumentFrequency,
    /// Largest chi-square statistic of token presence against the label first: tokens whose
    /// presence differs most between spam and ham, weighted by how often they occur.
    ChiSquare,
}

impl FeatureSettings {
    /// The tokenizer implemented by this build.
    pub const TOKENIZER_VERSION: u32 = 5;
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            tokenizer_version: Self::TOKENIZER_VERSION,
            min_document_frequency: 3,
            // The solver works on a dense matrix (messages × vocabulary), so its time grows
            // with this size. Chi-square selection keeps the discriminating tokens of the larger
            // unigram and bigram candidate set.
            max_vocabulary: 8_000,
            selection: Selection::ChiSquare,
            // Presence ranked spam better than `log(1 + count)` out of fold on TRAIN: a
            // repeated word adds little evidence beyond its first occurrence (docs/model.md).
            values: FeatureValues::Presence,
        }
    }
}

/// A sparse feature vector: (vocabulary index, value) pairs with distinct indices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureVector {
    pub entries: Vec<(u32, f32)>,
}

/// Token → index map, built from training documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    index: HashMap<String, u32>,
    tokens: Vec<String>,
    values: FeatureValues,
}

impl Vocabulary {
    /// Chooses the vocabulary from tokenized training documents, each with its label (true
    /// for spam).
    pub fn build<'a>(
        documents: impl IntoIterator<Item = (&'a [String], bool)>,
        settings: &FeatureSettings,
    ) -> Self {
        // Per token: (spam documents, ham documents) that contain it.
        let mut document_frequency: HashMap<&str, (u32, u32)> = HashMap::new();
        let (mut spam_documents, mut ham_documents) = (0u32, 0u32);
        for (document, is_spam) in documents {
            if is_spam {
                spam_documents += 1;
            } else {
                ham_documents += 1;
            }
            let mut seen: Vec<&str> = document.iter().map(String::as_str).collect();
            seen.sort_unstable();
            seen.dedup();
            for token in seen {
                let counts = document_frequency.entry(token).or_default();
                if is_spam {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
        }
        let mut candidates: Vec<(&str, f64)> = document_frequency
            .into_iter()
            .filter(|(_, (spam, ham))| spam + ham >= settings.min_document_frequency)
            .map(|(token, (spam, ham))| {
                let rank = match settings.selection {
                    Selection::DocumentFrequency => f64::from(spam + ham),
                    Selection::ChiSquare => chi_square(spam, ham, spam_documents, ham_documents),
                };
                (token, rank)
            })
            .collect();
        // Highest rank first; ties broken by token so the result does not depend on hashing.
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        candidates.truncate(settings.max_vocabulary as usize);
        candidates.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Self::from_tokens(
            candidates
                .into_iter()
                .map(|(token, _)| token.to_owned())
                .collect(),
            settings.values,
        )
    }

    /// Rebuilds a vocabulary from its tokens in index order.
    pub fn from_tokens(tokens: Vec<String>, values: FeatureValues) -> Self {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(position, token)| (token.clone(), position as u32))
            .collect();
        Self {
            index,
            tokens,
            values,
        }
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
            .map(|(index, count)| (index, self.values.of(count)))
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

/// Computes the chi-square statistic of the 2×2 table (token present or absent, spam or ham), from
/// the documents of each class that contain the token and the class sizes.
fn chi_square(spam_with: u32, ham_with: u32, spam_documents: u32, ham_documents: u32) -> f64 {
    let a = f64::from(spam_with);
    let b = f64::from(ham_with);
    let c = f64::from(spam_documents) - a;
    let d = f64::from(ham_documents) - b;
    let n = a + b + c + d;
    let denominator = (a + b) * (c + d) * (a + c) * (b + d);
    if denominator == 0.0 {
        return 0.0;
    }
    n * (a * d - b * c).powi(2) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn unlabelled(docs: &[Vec<String>]) -> impl Iterator<Item = (&[String], bool)> {
        docs.iter().map(|d| (d.as_slice(), false))
    }

    #[test]
    fn vocabulary_keeps_frequent_tokens() {
        let docs = [doc(&["a", "b", "b"]), doc(&["a", "c"]), doc(&["a", "b"])];
        let settings = FeatureSettings {
            min_document_frequency: 2,
            max_vocabulary: 10,
            selection: Selection::DocumentFrequency,
            ..FeatureSettings::default()
        };
        let vocabulary = Vocabulary::build(unlabelled(&docs), &settings);
        assert_eq!(vocabulary.tokens(), ["a", "b"]);
    }

    #[test]
    fn vocabulary_respects_size_cap() {
        let docs = [doc(&["a", "b"]), doc(&["a", "b"]), doc(&["a"])];
        let settings = FeatureSettings {
            min_document_frequency: 1,
            max_vocabulary: 1,
            selection: Selection::DocumentFrequency,
            ..FeatureSettings::default()
        };
        let vocabulary = Vocabulary::build(unlabelled(&docs), &settings);
        assert_eq!(vocabulary.tokens(), ["a"]);
    }

    #[test]
    fn chi_square_prefers_class_specific_tokens() {
        // "common" is in every document; "cash" only in spam; "rare" in one of each.
        let docs = [
            (doc(&["common", "cash"]), true),
            (doc(&["common", "cash", "rare"]), true),
            (doc(&["common", "rare"]), false),
            (doc(&["common"]), false),
        ];
        let settings = FeatureSettings {
            min_document_frequency: 1,
            max_vocabulary: 1,
            selection: Selection::ChiSquare,
            ..FeatureSettings::default()
        };
        let vocabulary = Vocabulary::build(docs.iter().map(|(d, s)| (d.as_slice(), *s)), &settings);
        assert_eq!(vocabulary.tokens(), ["cash"]);
        assert_eq!(chi_square(2, 0, 2, 2), 4.0);
        assert_eq!(chi_square(2, 2, 2, 2), 0.0);
    }

    #[test]
    fn vectors_are_unit_length() {
        let vocabulary = Vocabulary::from_tokens(doc(&["a", "b"]), FeatureValues::LogCount);
        let vector = vocabulary.vectorize(&doc(&["a", "a", "b", "zzz"]));
        let norm: f32 = vector.entries.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        assert_eq!(vector.entries.len(), 2);
        assert!(vector.entries[0].1 > vector.entries[1].1);
    }

    #[test]
    fn presence_ignores_repeats() {
        let vocabulary = Vocabulary::from_tokens(doc(&["a", "b"]), FeatureValues::Presence);
        let vector = vocabulary.vectorize(&doc(&["a", "a", "a", "b"]));
        let half = 0.5f32.sqrt();
        assert_eq!(vector.entries.len(), 2);
        for (_, value) in &vector.entries {
            assert!((value - half).abs() < 1e-6, "{vector:?}");
        }
    }

    #[test]
    fn settings_without_values_read_as_log_count() {
        let json = r#"{"tokenizer_version":2,"min_document_frequency":3,"max_vocabulary":10,"selection":"chi_square"}"#;
        let settings: FeatureSettings = serde_json::from_str(json).unwrap();
        assert_eq!(settings.values, FeatureValues::LogCount);
    }

    #[test]
    fn unknown_tokens_give_empty_vector() {
        let vocabulary = Vocabulary::from_tokens(doc(&["a"]), FeatureValues::Presence);
        assert!(vocabulary.vectorize(&doc(&["q"])).entries.is_empty());
    }
}

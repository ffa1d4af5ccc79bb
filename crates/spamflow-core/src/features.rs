//! Feature vectors: tokens mapped through a bounded vocabulary to sparse, L2-normalized
//! values, either token presence or `log(1 + count)`.
//!
//! The vocabulary is chosen from the training set only, by document frequency or by how
//! strongly a token's presence depends on the class (chi-square), and is stored in the model file with
//! the settings below, so scoring always uses exactly the features the model was trained on.
//!
//! A second block of the vocabulary can hold character n-grams of the subject and body words
//! (`c:` and the gram). They match the parts that misspelt, run-together or inflected forms of a
//! word share with it. Each block is scaled to unit length on its own, so that the hundreds of
//! grams of a message do not drown its tokens.

use std::collections::HashMap;

use foldhash::HashSet;
use foldhash::fast::RandomState;

use serde::{Deserialize, Serialize};

use crate::tokens::is_word_char;

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
    /// The character n-gram block. Model files written before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub character_grams: Option<CharacterGrams>,
}

/// Settings of the vocabulary's character n-gram block.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharacterGrams {
    /// Characters per gram. A word is read with `<` before it and `>` after it, so that grams
    /// at its start and end differ from those inside it.
    pub length: u32,
    /// At most this many grams, ranked by `FeatureSettings::selection` like the tokens.
    pub max_vocabulary: u32,
    /// Length of the gram block of a feature vector. The token block has length 1.
    pub scale: f32,
}

impl CharacterGrams {
    /// Maximum gram length, in characters. Grams that long are mostly whole words, which the
    /// token block already has.
    pub const MAX_LENGTH: u32 = 32;
    /// Maximum block scale. Far above it, the gram block alone decides every
    /// score and probabilities saturate at 0 or 1.
    pub const MAX_SCALE: f32 = 100.0;

    /// Returns the reason these settings are invalid, or `None` when they are valid.
    pub fn problem(&self) -> Option<String> {
        if !(1..=Self::MAX_LENGTH).contains(&self.length) {
            return Some(format!(
                "character gram length {} is outside 1..={}",
                self.length,
                Self::MAX_LENGTH
            ));
        }
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= Self::MAX_SCALE) {
            return Some(format!(
                "character gram block scale {} must be a positive number no larger than {}",
                self.scale,
                Self::MAX_SCALE
            ));
        }
        None
    }

    /// Returns the first vocabulary entry that contradicts `grams`: a `c:` entry whose gram is
    /// not `length` characters long, or any `c:` entry when there is no gram block. No token of
    /// the tokenizer starts with `c:`.
    pub fn mismatched_entry<'a>(grams: Option<&Self>, vocabulary: &'a [String]) -> Option<&'a str> {
        vocabulary
            .iter()
            .find(|entry| match (entry.strip_prefix(GRAM_PREFIX), grams) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(gram), Some(grams)) => gram.chars().count() != grams.length as usize,
            })
            .map(String::as_str)
    }
}

/// The prefix of gram entries in the vocabulary's token list.
const GRAM_PREFIX: &str = "c:";

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
            // Off: the gram block ranked TRAIN's folds better but let far more ham through on
            // mail from another period (docs/model.md).
            character_grams: None,
        }
    }
}

impl Default for CharacterGrams {
    fn default() -> Self {
        Self {
            length: 4,
            max_vocabulary: 16_000,
            // At 1.0, a model trained on the corpus's later folders flagged 49 of the 2,500 ham of
            // its earlier folders, and at 0.5 one (docs/model.md).
            scale: 0.5,
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
    /// Index of each token. Gram entries are in `grams` instead. Message text is only looked
    /// up here, never inserted, so a fast hash without protection against flooding is enough.
    index: HashMap<String, u32, RandomState>,
    /// Index of each gram, keyed without [`GRAM_PREFIX`].
    grams: HashMap<String, u32, RandomState>,
    /// Every entry in index order, grams with their prefix.
    tokens: Vec<String>,
    values: FeatureValues,
    character_grams: Option<CharacterGrams>,
}

impl Vocabulary {
    /// Chooses the vocabulary from tokenized training documents, each with its label (true
    /// for spam).
    pub fn build<'a>(
        documents: impl IntoIterator<Item = (&'a [String], bool)> + Clone,
        settings: &FeatureSettings,
    ) -> Self {
        let gram_documents = documents.clone();
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
            count_documents(&mut document_frequency, seen, is_spam);
        }
        let candidates = ranked(&document_frequency, settings, spam_documents, ham_documents);
        let mut tokens: Vec<String> = top(candidates, settings.max_vocabulary)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let Some(grams) = settings.character_grams {
            let mut gram_frequency: HashMap<String, (u32, u32)> = HashMap::new();
            for (document, is_spam) in gram_documents {
                let mut seen: HashSet<String> = HashSet::default();
                for_each_gram(document, grams.length, |gram| {
                    if !seen.contains(gram) {
                        seen.insert(gram.to_owned());
                    }
                });
                count_documents(&mut gram_frequency, seen, is_spam);
            }
            let candidates = ranked(&gram_frequency, settings, spam_documents, ham_documents);
            tokens.extend(
                top(candidates, grams.max_vocabulary)
                    .into_iter()
                    .map(|gram| format!("{GRAM_PREFIX}{gram}")),
            );
        }
        tokens.sort_unstable();
        Self::from_tokens(tokens, settings)
    }

    /// Rebuilds a vocabulary from its entries in index order. Entries starting with `c:` are
    /// grams when `settings` has a gram block.
    pub fn from_tokens(tokens: Vec<String>, settings: &FeatureSettings) -> Self {
        let mut index = HashMap::default();
        let mut grams = HashMap::default();
        for (position, token) in tokens.iter().enumerate() {
            match token.strip_prefix(GRAM_PREFIX) {
                Some(gram) if settings.character_grams.is_some() => {
                    grams.insert(gram.to_owned(), position as u32);
                }
                _ => {
                    index.insert(token.clone(), position as u32);
                }
            }
        }
        Self {
            index,
            grams,
            tokens,
            values: settings.values,
            character_grams: settings.character_grams,
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Counts the entries of the gram block.
    pub fn gram_count(&self) -> usize {
        self.grams.len()
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Returns the token at `index`, if any.
    pub fn token(&self, index: u32) -> Option<&str> {
        self.tokens.get(index as usize).map(String::as_str)
    }

    /// Maps tokens, and the grams of their words when the vocabulary has a gram block, to a
    /// feature vector. Tokens and grams outside the vocabulary are ignored.
    pub fn vectorize(&self, tokens: &[String]) -> FeatureVector {
        let mut found: Vec<u32> = tokens
            .iter()
            .filter_map(|token| self.index.get(token.as_str()).copied())
            .collect();
        let mut entries = self.unit_block(&mut found, 1.0);
        if let Some(settings) = self.character_grams {
            found.clear();
            for_each_gram(tokens, settings.length, |gram| {
                found.extend(self.grams.get(gram).copied());
            });
            entries.extend(self.unit_block(&mut found, settings.scale));
            entries.sort_unstable_by_key(|(index, _)| *index);
        }
        FeatureVector { entries }
    }

    /// Builds the entries of one block in index order: the value of each index's count in
    /// `found`, with the block scaled to length `length`.
    fn unit_block(&self, found: &mut [u32], length: f32) -> Vec<(u32, f32)> {
        found.sort_unstable();
        let mut entries: Vec<(u32, f32)> = found
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], self.values.of(run.len() as u32)))
            .collect();
        let norm = entries.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, value) in &mut entries {
                *value = *value / norm * length;
            }
        }
        entries
    }
}

/// Calls `each` with every character n-gram of `length` characters of the distinct subject and
/// body words among `tokens`. Those are the `s:` and `b:` tokens made only of word characters,
/// which leaves out shape tokens (`b:shape:length:2`) and `<number>`. Each word is read as
/// `<word>`, and a gram comes once per distinct word that has it.
pub fn for_each_gram(tokens: &[String], length: u32, mut each: impl FnMut(&str)) {
    let length = length as usize;
    let mut seen: HashSet<&str> = HashSet::default();
    let mut word = String::new();
    let mut starts: Vec<usize> = Vec::new();
    for token in tokens {
        let Some(text) = token
            .strip_prefix("b:")
            .or_else(|| token.strip_prefix("s:"))
        else {
            continue;
        };
        if !text.chars().all(is_word_char) || !seen.insert(text) {
            continue;
        }
        word.clear();
        word.push('<');
        word.push_str(text);
        word.push('>');
        starts.clear();
        starts.extend(word.char_indices().map(|(at, _)| at));
        starts.push(word.len());
        for window in starts.windows(length + 1) {
            each(&word[window[0]..window[length]]);
        }
    }
}

/// Adds one document of its class to the count of each distinct key it contains.
fn count_documents<K: std::hash::Hash + Eq>(
    document_frequency: &mut HashMap<K, (u32, u32)>,
    distinct: impl IntoIterator<Item = K>,
    is_spam: bool,
) {
    for key in distinct {
        let counts = document_frequency.entry(key).or_default();
        if is_spam {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
}

/// Ranks the candidates that enough training documents contain.
fn ranked<'a, K: AsRef<str>>(
    document_frequency: &'a HashMap<K, (u32, u32)>,
    settings: &FeatureSettings,
    spam_documents: u32,
    ham_documents: u32,
) -> Vec<(&'a str, f64)> {
    document_frequency
        .iter()
        .filter(|(_, (spam, ham))| spam + ham >= settings.min_document_frequency)
        .map(|(token, &(spam, ham))| {
            let rank = match settings.selection {
                Selection::DocumentFrequency => f64::from(spam + ham),
                Selection::ChiSquare => chi_square(spam, ham, spam_documents, ham_documents),
            };
            (token.as_ref(), rank)
        })
        .collect()
}

/// Returns the `size` candidates of highest rank. Ties are broken by token, so the result does
/// not depend on hashing.
fn top(mut candidates: Vec<(&str, f64)>, size: u32) -> Vec<&str> {
    candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    candidates.truncate(size as usize);
    candidates.into_iter().map(|(token, _)| token).collect()
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

    fn words_only(values: FeatureValues) -> FeatureSettings {
        FeatureSettings {
            values,
            character_grams: None,
            ..FeatureSettings::default()
        }
    }

    fn unlabelled(docs: &[Vec<String>]) -> impl Iterator<Item = (&[String], bool)> + Clone {
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
        let vocabulary =
            Vocabulary::from_tokens(doc(&["a", "b"]), &words_only(FeatureValues::LogCount));
        let vector = vocabulary.vectorize(&doc(&["a", "a", "b", "zzz"]));
        let norm: f32 = vector.entries.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        assert_eq!(vector.entries.len(), 2);
        assert!(vector.entries[0].1 > vector.entries[1].1);
    }

    #[test]
    fn presence_ignores_repeats() {
        let vocabulary =
            Vocabulary::from_tokens(doc(&["a", "b"]), &words_only(FeatureValues::Presence));
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
    fn grams_come_from_words_only() {
        let tokens = doc(&[
            "b:free",
            "s:ok",
            "b2:two_words",
            "h:type:text",
            "s:free",
            "b:shape:length:2",
            "s:shape:mostly_upper",
            "b:<number>",
            "b:éxé",
            "b:免费",
        ]);
        let mut grams = Vec::new();
        for_each_gram(&tokens, 4, |gram| grams.push(gram.to_owned()));
        assert_eq!(
            grams,
            ["<fre", "free", "ree>", "<ok>", "<éxé", "éxé>", "<免费>"]
        );
    }

    fn with_grams(scale: f32, max_vocabulary: u32) -> FeatureSettings {
        FeatureSettings {
            values: FeatureValues::Presence,
            min_document_frequency: 1,
            character_grams: Some(CharacterGrams {
                length: 4,
                max_vocabulary,
                scale,
            }),
            ..FeatureSettings::default()
        }
    }

    #[test]
    fn each_block_has_its_own_length() {
        let vocabulary =
            Vocabulary::from_tokens(doc(&["b:free", "c:<fre", "c:free"]), &with_grams(0.5, 10));
        let vector = vocabulary.vectorize(&doc(&["b:free", "h:other"]));
        let quarter = 0.5 * 0.5f32.sqrt();
        assert_eq!(vector.entries.len(), 3, "{vector:?}");
        assert_eq!(vector.entries[0], (0, 1.0));
        for &(_, value) in &vector.entries[1..] {
            assert!((value - quarter).abs() < 1e-6, "{vector:?}");
        }
    }

    #[test]
    fn gram_entries_need_a_gram_block() {
        // Without the block, `c:` entries are plain tokens that no tokenizer produces.
        let vocabulary =
            Vocabulary::from_tokens(doc(&["c:free"]), &words_only(FeatureValues::Presence));
        assert!(vocabulary.vectorize(&doc(&["b:free"])).entries.is_empty());
        assert_eq!(vocabulary.vectorize(&doc(&["c:free"])).entries, [(0, 1.0)]);
    }

    #[test]
    fn grams_are_chosen_within_their_own_limit() {
        let docs = [
            (doc(&["b:cheap", "b:pills"]), true),
            (doc(&["b:cheap", "b:watches"]), true),
            (doc(&["b:hello", "b:friend"]), false),
            (doc(&["b:hello", "b:again"]), false),
        ];
        let settings = FeatureSettings {
            max_vocabulary: 2,
            ..with_grams(1.0, 3)
        };
        let vocabulary = Vocabulary::build(docs.iter().map(|(d, s)| (d.as_slice(), *s)), &settings);
        let (grams, words): (Vec<&String>, Vec<&String>) = vocabulary
            .tokens()
            .iter()
            .partition(|t| t.starts_with("c:"));
        assert_eq!(words, ["b:cheap", "b:hello"]);
        assert_eq!(grams.len(), 3, "{grams:?}");
        for gram in grams {
            let inside = ["<cheap>", "<hello>"]
                .iter()
                .any(|w| w.contains(&gram[2..]));
            assert!(
                inside,
                "{gram} is not part of a word in both documents of a class"
            );
        }
    }

    #[test]
    fn settings_without_character_grams_have_none() {
        let json = r#"{"tokenizer_version":5,"min_document_frequency":3,"max_vocabulary":10,"selection":"chi_square","values":"presence"}"#;
        let settings: FeatureSettings = serde_json::from_str(json).unwrap();
        assert_eq!(settings.character_grams, None);
        let written = serde_json::to_string(&settings).unwrap();
        assert!(!written.contains("character_grams"), "{written}");
    }

    #[test]
    fn unknown_tokens_give_empty_vector() {
        let vocabulary = Vocabulary::from_tokens(doc(&["a"]), &words_only(FeatureValues::Presence));
        assert!(vocabulary.vectorize(&doc(&["q"])).entries.is_empty());
    }
}

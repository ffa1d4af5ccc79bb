//! The logistic-regression spam model: training with linfa-logistic, scoring, and the
//! versioned, self-describing model file.
//!
//! A model file is JSON. It carries the feature settings and vocabulary it needs to score, the
//! sha256 of the training set, the hyperparameters and the training metrics, so any file can
//! be inspected and reproduced on its own.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::email::Email;
use crate::features::{FeatureSettings, FeatureVector, Vocabulary};
use crate::metrics::{Confusion, roc_auc};
use crate::tokens::tokenize;

/// A message's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Ham,
    Spam,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ham => "ham",
            Self::Spam => "spam",
        }
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a model could not be trained, read or used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model file: {0}")]
    InvalidFile(#[from] serde_json::Error),
    #[error("model file format `{found}` is not `{expected}`")]
    WrongFormat {
        found: String,
        expected: &'static str,
    },
    #[error(
        "model file format version {found} is not supported; this build reads version {supported}"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error(
        "model uses tokenizer version {found} but this build implements version {supported}; \
         retrain the model with `spamctl train`"
    )]
    TokenizerMismatch { found: u32, supported: u32 },
    #[error("model is inconsistent: {tokens} vocabulary tokens but {weights} weights")]
    ShapeMismatch { tokens: usize, weights: usize },
    #[error("model threshold {0} is outside [0, 1]")]
    InvalidThreshold(f64),
    #[error("training needs both classes, got {spam} spam and {ham} ham messages")]
    OneClass { spam: usize, ham: usize },
    #[error("training failed: {0}")]
    Training(String),
}

/// Hyperparameters for [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOptions {
    pub features: FeatureSettings,
    /// L2 penalty: the loss is the summed log loss plus `alpha / 2 * |w|^2`.
    pub alpha: f64,
    pub max_iterations: u64,
    /// Probability at or above which a message is spam.
    pub threshold: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            features: FeatureSettings::default(),
            alpha: 0.1,
            max_iterations: 200,
            threshold: 0.5,
        }
    }
}

/// Facts about how a model was trained, kept in its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// sha256 over the sorted (label, sha256 of message) pairs of the training set.
    pub training_set_sha256: String,
    pub messages: u64,
    pub spam: u64,
    pub ham: u64,
    pub options: TrainOptions,
    /// RFC 3339 UTC time the training finished.
    pub trained_at: String,
    /// Accuracy on the training set itself: a sanity check, not an estimate of real accuracy.
    pub training_accuracy: f64,
    pub training_auc: f64,
}

/// The model file's JSON layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    format_version: u32,
    model_version: String,
    threshold: f64,
    intercept: f32,
    training: TrainingInfo,
    features: FeatureSettings,
    /// Vocabulary tokens; `weights[i]` belongs to `vocabulary[i]`.
    vocabulary: Vec<String>,
    weights: Vec<f32>,
}

const FORMAT: &str = "spamflow-logistic-regression";
const FORMAT_VERSION: u32 = 1;

/// A trained model, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    version: String,
    threshold: f64,
    intercept: f32,
    weights: Vec<f32>,
    vocabulary: Vocabulary,
    features: FeatureSettings,
    training: TrainingInfo,
}

/// The model's judgement of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Probability of spam, in [0, 1].
    pub probability: f64,
    pub label: Label,
    /// (token, weight × value) for the features with the largest absolute contributions,
    /// largest first.
    pub top_features: Vec<(String, f64)>,
}

/// One labelled training message, already tokenized.
#[derive(Debug, Clone)]
pub struct Example {
    pub tokens: Vec<String>,
    pub label: Label,
    /// sha256 of the raw message, for the training-set digest.
    pub sha256: [u8; 32],
}

impl Example {
    /// Tokenizes a parsed email for training.
    pub fn new(email: &Email, label: Label, raw: &[u8]) -> Self {
        Self {
            tokens: tokenize(email),
            label,
            sha256: Sha256::digest(raw).into(),
        }
    }
}

/// How many top features a [`Score`] reports.
pub const TOP_FEATURES: usize = 10;

impl Model {
    /// Reads a model from its JSON file contents.
    ///
    /// # Errors
    ///
    /// Returns [`ModelError`] for invalid JSON, another format or version, a tokenizer this
    /// build does not implement, or inconsistent contents.
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        let file: ModelFile = serde_json::from_str(json)?;
        if file.format != FORMAT {
            return Err(ModelError::WrongFormat {
                found: file.format,
                expected: FORMAT,
            });
        }
        if file.format_version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion {
                found: file.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if file.features.tokenizer_version != FeatureSettings::TOKENIZER_VERSION {
            return Err(ModelError::TokenizerMismatch {
                found: file.features.tokenizer_version,
                supported: FeatureSettings::TOKENIZER_VERSION,
            });
        }
        if file.vocabulary.len() != file.weights.len() {
            return Err(ModelError::ShapeMismatch {
                tokens: file.vocabulary.len(),
                weights: file.weights.len(),
            });
        }
        if !(0.0..=1.0).contains(&file.threshold) {
            return Err(ModelError::InvalidThreshold(file.threshold));
        }
        Ok(Self {
            version: file.model_version,
            threshold: file.threshold,
            intercept: file.intercept,
            weights: file.weights,
            vocabulary: Vocabulary::from_tokens(file.vocabulary),
            features: file.features,
            training: file.training,
        })
    }

    /// Serializes the model to its JSON file contents.
    pub fn to_json(&self) -> String {
        let file = ModelFile {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            model_version: self.version.clone(),
            threshold: self.threshold,
            intercept: self.intercept,
            training: self.training.clone(),
            features: self.features.clone(),
            vocabulary: self.vocabulary.tokens().to_vec(),
            weights: self.weights.clone(),
        };
        // Serializing plain structs of strings and finite numbers cannot fail.
        serde_json::to_string(&file).expect("model file serializes")
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Returns a copy of the model that labels with another threshold.
    ///
    /// # Errors
    ///
    /// Returns [`ModelError::InvalidThreshold`] outside [0, 1].
    pub fn with_threshold(mut self, threshold: f64) -> Result<Self, ModelError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(ModelError::InvalidThreshold(threshold));
        }
        self.threshold = threshold;
        Ok(self)
    }

    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    pub fn training(&self) -> &TrainingInfo {
        &self.training
    }

    /// Scores a parsed email.
    pub fn score(&self, email: &Email) -> Score {
        self.score_tokens(&tokenize(email))
    }

    /// Scores already tokenized text.
    pub fn score_tokens(&self, tokens: &[String]) -> Score {
        let vector = self.vocabulary.vectorize(tokens);
        let probability = self.probability(&vector);
        let mut contributions: Vec<(u32, f64)> = vector
            .entries
            .iter()
            .map(|&(index, value)| (index, f64::from(self.weights[index as usize] * value)))
            .collect();
        contributions.sort_unstable_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        contributions.truncate(TOP_FEATURES);
        Score {
            probability,
            label: if probability >= self.threshold {
                Label::Spam
            } else {
                Label::Ham
            },
            top_features: contributions
                .into_iter()
                .filter_map(|(index, c)| self.vocabulary.token(index).map(|t| (t.to_owned(), c)))
                .collect(),
        }
    }

    /// Returns the spam probability of a feature vector.
    pub fn probability(&self, vector: &FeatureVector) -> f64 {
        let mut logit = f64::from(self.intercept);
        for &(index, value) in &vector.entries {
            // Vectors come from this model's vocabulary, so every index has a weight.
            logit += f64::from(self.weights[index as usize] * value);
        }
        1.0 / (1.0 + (-logit).exp())
    }
}

/// Returns the sha256 that identifies a training set, independent of message order.
pub fn training_set_sha256(examples: &[Example]) -> String {
    let mut entries: Vec<(Label, [u8; 32])> =
        examples.iter().map(|e| (e.label, e.sha256)).collect();
    entries.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
    let mut hasher = Sha256::new();
    for (label, digest) in entries {
        hasher.update(label.as_str().as_bytes());
        hasher.update(digest);
    }
    hex::encode(hasher.finalize())
}

/// Trains a model on labelled examples.
///
/// `trained_at` is the RFC 3339 time to record; it is passed in because this crate reads no
/// clock.
///
/// # Errors
///
/// Returns [`ModelError::OneClass`] unless both classes are present, and
/// [`ModelError::Training`] when the solver fails.
pub fn train(
    examples: &[Example],
    options: &TrainOptions,
    trained_at: String,
) -> Result<Model, ModelError> {
    let spam = examples.iter().filter(|e| e.label == Label::Spam).count();
    let ham = examples.len() - spam;
    if spam == 0 || ham == 0 {
        return Err(ModelError::OneClass { spam, ham });
    }
    if !(0.0..=1.0).contains(&options.threshold) {
        return Err(ModelError::InvalidThreshold(options.threshold));
    }

    let vocabulary = Vocabulary::build(
        examples.iter().map(|e| e.tokens.as_slice()),
        &options.features,
    );
    let vectors: Vec<FeatureVector> = examples
        .iter()
        .map(|e| vocabulary.vectorize(&e.tokens))
        .collect();
    let mut records = Array2::<f32>::zeros((examples.len(), vocabulary.len()));
    for (row, vector) in vectors.iter().enumerate() {
        for &(index, value) in &vector.entries {
            records[[row, index as usize]] = value;
        }
    }
    let targets: Array1<bool> = examples.iter().map(|e| e.label == Label::Spam).collect();
    let dataset = Dataset::new(records, targets);

    let fitted = LogisticRegression::default()
        .alpha(options.alpha as f32)
        .max_iterations(options.max_iterations)
        .with_intercept(true)
        .fit(&dataset)
        .map_err(|error| ModelError::Training(error.to_string()))?;

    // linfa-logistic models the probability of its "positive" class, which it takes to be the
    // more frequent one. Orient the weights so the model always gives P(spam).
    let orientation = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let weights: Vec<f32> = fitted.params().iter().map(|w| w * orientation).collect();

    let training_set_sha256 = training_set_sha256(examples);
    let mut model = Model {
        version: model_version(&training_set_sha256, options),
        threshold: options.threshold,
        intercept: fitted.intercept() * orientation,
        weights,
        vocabulary,
        features: options.features.clone(),
        training: TrainingInfo {
            training_set_sha256,
            messages: examples.len() as u64,
            spam: spam as u64,
            ham: ham as u64,
            options: options.clone(),
            trained_at,
            training_accuracy: 0.0,
            training_auc: 0.0,
        },
    };

    let scored: Vec<(f64, bool)> = vectors
        .iter()
        .zip(examples)
        .map(|(vector, e)| (model.probability(vector), e.label == Label::Spam))
        .collect();
    let confusion = Confusion::from_scores(&scored, model.threshold);
    model.training.training_accuracy = confusion.accuracy();
    model.training.training_auc = roc_auc(&scored);
    Ok(model)
}

/// A version name that changes whenever the training data or settings change.
fn model_version(training_set_sha256: &str, options: &TrainOptions) -> String {
    let mut hasher = Sha256::new();
    hasher.update(training_set_sha256.as_bytes());
    // TrainOptions holds only numbers and small structs, so it always serializes.
    hasher.update(serde_json::to_vec(options).expect("options serialize"));
    format!(
        "lr{FORMAT_VERSION}-{}",
        &hex::encode(hasher.finalize())[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Limits;

    fn example(text: &str, label: Label) -> Example {
        let email = Email::from_plain_text(text, Limits::default()).unwrap();
        Example::new(&email, label, text.as_bytes())
    }

    fn toy_set() -> Vec<Example> {
        let spam = [
            "win cash prize now click here",
            "cheap pills discount offer click",
            "free money win now limited offer",
            "claim your prize cash reward now",
        ];
        let ham = [
            "meeting notes from the design review",
            "the build failed on the release branch",
            "lunch tomorrow with the team at noon",
            "please review the patch for the parser",
        ];
        let mut set = Vec::new();
        for _ in 0..3 {
            set.extend(spam.iter().map(|t| example(t, Label::Spam)));
            set.extend(ham.iter().map(|t| example(t, Label::Ham)));
        }
        set
    }

    fn options() -> TrainOptions {
        TrainOptions {
            features: FeatureSettings {
                min_document_frequency: 1,
                ..FeatureSettings::default()
            },
            alpha: 0.01,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn trained_model_separates_toy_classes() {
        let model = train(&toy_set(), &options(), "2026-01-01T00:00:00Z".into()).unwrap();
        let spam =
            model.score(&Email::from_plain_text("win a cash prize", Limits::default()).unwrap());
        let ham = model
            .score(&Email::from_plain_text("review the parser patch", Limits::default()).unwrap());
        assert_eq!(spam.label, Label::Spam, "{spam:?}");
        assert_eq!(ham.label, Label::Ham, "{ham:?}");
        assert!(
            spam.top_features
                .iter()
                .any(|(t, c)| t.starts_with("b:") && *c > 0.0)
        );
        assert_eq!(model.training().training_accuracy, 1.0);
    }

    #[test]
    fn model_file_round_trips() {
        let model = train(&toy_set(), &options(), "2026-01-01T00:00:00Z".into()).unwrap();
        let loaded = Model::from_json(&model.to_json()).unwrap();
        assert_eq!(loaded, model);
        assert!(loaded.version().starts_with("lr1-"));
    }

    #[test]
    fn rejects_one_class_training_set() {
        let set: Vec<Example> = toy_set()
            .into_iter()
            .filter(|e| e.label == Label::Ham)
            .collect();
        assert!(matches!(
            train(&set, &options(), String::new()),
            Err(ModelError::OneClass { spam: 0, ham: 12 })
        ));
    }

    #[test]
    fn rejects_foreign_model_file() {
        let model = train(&toy_set(), &options(), String::new()).unwrap();
        let json = model.to_json().replace(FORMAT, "other-format");
        assert!(matches!(
            Model::from_json(&json),
            Err(ModelError::WrongFormat { .. })
        ));
        assert!(matches!(
            Model::from_json("{"),
            Err(ModelError::InvalidFile(_))
        ));
    }

    #[test]
    fn training_set_digest_ignores_order() {
        let mut set = toy_set();
        let forward = training_set_sha256(&set);
        set.reverse();
        assert_eq!(training_set_sha256(&set), forward);
    }
}

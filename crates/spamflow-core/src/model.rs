//! The logistic-regression spam model: training with linfa-logistic, scoring, and the
//! versioned, self-describing model file.
//!
//! A model file is JSON. It carries the feature settings and vocabulary it needs to score, the
//! calibration, the sha256 of the training set, the hyperparameters, the cross-validation
//! results and the training metrics, so any file can be inspected and reproduced on its own.
//!
//! Training runs k-fold cross-validation on the training set only: each fold builds its own
//! vocabulary and fits one model per L2 penalty, and the held-out (out-of-fold) logits choose
//! the penalty, fit the Platt calibration and place the threshold. The final model is then
//! fitted on the whole training set.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, Ix1, ShapeBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::calibration::{
    Calibration, log_loss, stratified_folds, threshold_for_ham_fpr, thresholds_for_parts,
};
use crate::email::Email;
use crate::features::{CharacterGrams, FeatureSettings, FeatureVector, Vocabulary};
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

/// Errors of training, reading or using a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "invalid model file: {0}; a model file is the JSON that `spamctl train` writes, and JSON \
         has no NaN or Infinity"
    )]
    InvalidFile(#[from] serde_json::Error),
    #[error("model file format `{found}` is not `{expected}`")]
    WrongFormat {
        found: String,
        expected: &'static str,
    },
    #[error(
        "model file format version {found} is not supported; this build reads version \
         {supported}; retrain the model with `spamctl train`"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error(
        "model uses tokenizer version {found} but this build implements version {supported}; \
         retrain the model with `spamctl train`"
    )]
    TokenizerMismatch { found: u32, supported: u32 },
    #[error("model is inconsistent: {tokens} vocabulary tokens but {weights} weights")]
    ShapeMismatch { tokens: usize, weights: usize },
    #[error(
        "model threshold {0} is outside (0, 1): at 0 every message is spam, and at 1 none is; \
         retrain the model, or pass a threshold such as 0.9 to `spamctl train --threshold`"
    )]
    InvalidThreshold(f64),
    #[error("training needs both classes, got {spam} spam and {ham} ham messages")]
    OneClass { spam: usize, ham: usize },
    #[error("invalid training options: {0}")]
    InvalidOptions(String),
    #[error("invalid feature settings in the model file: {0}")]
    InvalidSettings(String),
    #[error("model is inconsistent: vocabulary entry {0:?} appears more than once")]
    DuplicateEntry(String),
    #[error("training failed: {0}")]
    Training(String),
}

/// Hyperparameters for [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOptions {
    pub features: FeatureSettings,
    /// L2 penalties tried by cross-validation. The loss is the summed log loss plus
    /// `alpha / 2 * |w|^2`, and the penalty with the lowest out-of-fold log loss after
    /// calibration wins. A single value skips the comparison but still runs the folds.
    pub alphas: Vec<f64>,
    /// Cross-validation folds, at least 2.
    pub folds: u32,
    pub max_iterations: u64,
    /// Largest share of training ham that may score at or above the threshold chosen on
    /// out-of-fold probabilities.
    pub max_ham_fpr: f64,
    /// A fixed threshold that replaces the tuned one.
    pub threshold: Option<f64>,
    /// Also tune a threshold of its own for mail that came through a mailing list. The false
    /// positives that `max_ham_fpr` allows are then shared between list mail and other mail.
    /// Ignored with a fixed `threshold`. Model files written before it existed have it off.
    #[serde(default)]
    pub list_mail_threshold: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            features: FeatureSettings::default(),
            // A decade-spaced grid. Out of fold on TRAIN with presence values, 0.0001 and
            // 0.001 ranked spam best, and penalties of 0.1 or more never won.
            alphas: vec![0.0001, 0.001, 0.01],
            folds: 5,
            max_iterations: 200,
            max_ham_fpr: 0.001,
            threshold: None,
            // On: list ham scores low, so list spam can be flagged lower for the same false
            // positives. It raised recall at the threshold in the nested run and in both
            // folder runs (docs/model.md).
            list_mail_threshold: true,
        }
    }
}

/// Out-of-fold results for one L2 penalty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossValidationResult {
    pub alpha: f64,
    /// Mean log loss of the calibrated out-of-fold probabilities.
    pub log_loss: f64,
    pub roc_auc: f64,
}

/// The cross-validation choices, and the chosen settings' results on held-out folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossValidation {
    pub folds: u32,
    pub results: Vec<CrossValidationResult>,
    pub chosen_alpha: f64,
    /// Out-of-fold ham false-positive rate at the model's threshold.
    pub ham_fpr: f64,
    /// Out-of-fold spam recall at the model's threshold.
    pub spam_recall: f64,
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
    pub cross_validation: CrossValidation,
    /// Accuracy on the training set itself: a sanity check, not an estimate of real accuracy.
    pub training_accuracy: f64,
    pub training_auc: f64,
    /// Version of the model whose penalty, calibration and threshold a refit reused; absent
    /// for a model trained with cross-validation. `cross_validation` then describes that
    /// model's cross-validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_of: Option<String>,
}

/// The model file's JSON layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    format_version: u32,
    model_version: String,
    threshold: f64,
    /// The threshold for mail that came through a mailing list, when it has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list_mail_threshold: Option<f64>,
    intercept: f32,
    calibration: Calibration,
    training: TrainingInfo,
    features: FeatureSettings,
    /// Vocabulary tokens; `weights[i]` belongs to `vocabulary[i]`.
    vocabulary: Vec<String>,
    weights: Vec<f32>,
}

const FORMAT: &str = "spamflow-logistic-regression";
/// The model file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// The fields every format version has, read first so that an old or foreign file gets a
/// precise error instead of a complaint about a missing field.
#[derive(Debug, Deserialize)]
struct ModelFileHeader {
    format: String,
    format_version: u32,
}

/// A trained model, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub(crate) version: String,
    pub(crate) threshold: f64,
    pub(crate) list_mail_threshold: Option<f64>,
    pub(crate) intercept: f32,
    pub(crate) calibration: Calibration,
    pub(crate) weights: Vec<f32>,
    pub(crate) vocabulary: Vocabulary,
    pub(crate) features: FeatureSettings,
    pub(crate) training: TrainingInfo,
}

/// The model's judgement of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// Probability of spam, in [0, 1].
    pub probability: f64,
    pub label: Label,
    /// The threshold the label was decided with: the list mail threshold for mail from a
    /// mailing list when the model has one, else the model's threshold.
    pub threshold: f64,
    /// (token, weight × value) for the features with the largest absolute contributions,
    /// largest first.
    pub top_features: Vec<(String, f64)>,
}

/// The features behind one score, split by direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The logit of a message with no known features.
    pub intercept: f64,
    /// (token, positive contribution), largest first.
    pub toward_spam: Vec<(String, f64)>,
    /// (token, negative contribution), most negative first.
    pub toward_ham: Vec<(String, f64)>,
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
        let header: ModelFileHeader = serde_json::from_str(json)?;
        if header.format != FORMAT {
            return Err(ModelError::WrongFormat {
                found: header.format,
                expected: FORMAT,
            });
        }
        if header.format_version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion {
                found: header.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let file: ModelFile = serde_json::from_str(json)?;
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
        for threshold in std::iter::once(file.threshold).chain(file.list_mail_threshold) {
            // At 0 every message is spam, and at 1 none is.
            if !(threshold > 0.0 && threshold < 1.0) {
                return Err(ModelError::InvalidThreshold(threshold));
            }
        }
        if let Some(problem) = file_problem(&file) {
            return Err(ModelError::InvalidSettings(problem));
        }
        if let Some(problem) = file.features.character_grams.and_then(|g| g.problem()) {
            return Err(ModelError::InvalidSettings(problem));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(entry) = file
            .vocabulary
            .iter()
            .find(|entry| !seen.insert(entry.as_str()))
        {
            return Err(ModelError::DuplicateEntry(entry.clone()));
        }
        let grams = file.features.character_grams.as_ref();
        if let Some(entry) = CharacterGrams::mismatched_entry(grams, &file.vocabulary) {
            return Err(ModelError::InvalidSettings(match grams {
                Some(grams) => format!(
                    "vocabulary entry {entry:?} is not a gram of {} characters, the length in \
                     `features.character_grams`",
                    grams.length
                ),
                None => format!(
                    "vocabulary entry {entry:?} is a character gram, but \
                     `features.character_grams` is missing"
                ),
            }));
        }
        Ok(Self {
            version: file.model_version,
            threshold: file.threshold,
            list_mail_threshold: file.list_mail_threshold,
            intercept: file.intercept,
            calibration: file.calibration,
            weights: file.weights,
            vocabulary: Vocabulary::from_tokens(file.vocabulary, &file.features),
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
            list_mail_threshold: self.list_mail_threshold,
            intercept: self.intercept,
            calibration: self.calibration,
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

    /// Returns the threshold for mail that came through a mailing list, when the model has one.
    pub fn list_mail_threshold(&self) -> Option<f64> {
        self.list_mail_threshold
    }

    /// Returns the threshold that decides the label of a message with these tokens.
    pub fn threshold_for(&self, tokens: &[String]) -> f64 {
        match self.list_mail_threshold {
            Some(threshold) if is_list_mail(tokens) => threshold,
            _ => self.threshold,
        }
    }

    /// Returns a copy of the model that labels all mail with another threshold.
    ///
    /// # Errors
    ///
    /// Returns [`ModelError::InvalidThreshold`] outside [0, 1].
    pub fn with_threshold(mut self, threshold: f64) -> Result<Self, ModelError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(ModelError::InvalidThreshold(threshold));
        }
        self.threshold = threshold;
        self.list_mail_threshold = None;
        Ok(self)
    }

    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// Counts the vocabulary entries that are character grams.
    pub fn vocabulary_grams(&self) -> usize {
        self.vocabulary.gram_count()
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
        let threshold = self.threshold_for(tokens);
        Score {
            probability,
            label: if probability >= threshold {
                Label::Spam
            } else {
                Label::Ham
            },
            threshold,
            top_features: contributions
                .into_iter()
                .filter_map(|(index, c)| self.vocabulary.token(index).map(|t| (t.to_owned(), c)))
                .collect(),
        }
    }

    /// Returns the calibrated spam probability of a feature vector.
    pub fn probability(&self, vector: &FeatureVector) -> f64 {
        self.calibration
            .probability(logit(&self.weights, self.intercept, vector))
    }

    pub fn calibration(&self) -> Calibration {
        self.calibration
    }

    /// Returns the features of a parsed email that pushed its score toward spam and those that
    /// pushed it toward ham, up to `limit` of each, strongest first. Each comes with its
    /// weight × value, the amount it adds to the uncalibrated logit.
    pub fn explain(&self, email: &Email, limit: usize) -> Explanation {
        self.explain_tokens(&tokenize(email), limit)
    }

    /// Explains already tokenized text, as [`Model::explain`] does a parsed email.
    pub fn explain_tokens(&self, tokens: &[String], limit: usize) -> Explanation {
        let vector = self.vocabulary.vectorize(tokens);
        let mut toward_spam = Vec::new();
        let mut toward_ham = Vec::new();
        for &(index, value) in &vector.entries {
            let contribution = f64::from(self.weights[index as usize] * value);
            let Some(token) = self.vocabulary.token(index) else {
                continue;
            };
            if contribution > 0.0 {
                toward_spam.push((token.to_owned(), contribution));
            } else if contribution < 0.0 {
                toward_ham.push((token.to_owned(), contribution));
            }
        }
        toward_spam.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        toward_ham.sort_unstable_by(|a, b| a.1.total_cmp(&b.1));
        toward_spam.truncate(limit);
        toward_ham.truncate(limit);
        Explanation {
            intercept: f64::from(self.intercept),
            toward_spam,
            toward_ham,
        }
    }
}

/// The token of mail that came through a mailing list: its `List-Id` field.
const LIST_MAIL_TOKEN: &str = "h:has:list-id";

/// Checks whether tokens come from mail that came through a mailing list.
fn is_list_mail(tokens: &[String]) -> bool {
    tokens.iter().any(|token| token == LIST_MAIL_TOKEN)
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

/// Trains a model on labelled examples without progress reports.
///
/// # Errors
///
/// As [`train_with_progress`].
pub fn train(
    examples: &[Example],
    options: &TrainOptions,
    trained_at: String,
) -> Result<Model, ModelError> {
    train_with_progress(examples, options, trained_at, &mut |_, _| {})
}

/// Trains a model on labelled examples: cross-validation over `options.alphas`, Platt
/// calibration and threshold on the out-of-fold scores, then a final fit on every example.
///
/// `trained_at` is the RFC 3339 time to record; it is passed in because this crate reads no
/// clock. `on_fit(done, total)` is called after each logistic-regression fit.
///
/// # Errors
///
/// Returns [`ModelError::OneClass`] unless both classes are present. Returns
/// [`ModelError::InvalidOptions`] for an empty or non-positive penalty grid, or for fewer than 2
/// folds or more folds than messages of a class. Returns [`ModelError::InvalidThreshold`] for a
/// fixed threshold outside [0, 1], and [`ModelError::Training`] when the solver fails.
pub fn train_with_progress(
    examples: &[Example],
    options: &TrainOptions,
    trained_at: String,
    on_fit: &mut dyn FnMut(usize, usize),
) -> Result<Model, ModelError> {
    let spam = examples.iter().filter(|e| e.label == Label::Spam).count();
    let ham = examples.len() - spam;
    if spam == 0 || ham == 0 {
        return Err(ModelError::OneClass { spam, ham });
    }
    validate_options(options, spam.min(ham))?;

    let labels: Vec<bool> = examples.iter().map(|e| e.label == Label::Spam).collect();
    let keys: Vec<[u8; 32]> = examples.iter().map(|e| e.sha256).collect();
    let folds = options.folds as usize;
    let assignment = stratified_folds(&labels, &keys, folds);
    let total_fits = folds * options.alphas.len() + 1;
    let mut fits_done = 0;

    // out_of_fold[a][i]: logit of example i from the fold model with penalty alphas[a].
    let mut out_of_fold = vec![vec![0.0f64; examples.len()]; options.alphas.len()];
    // Folds are independent, so they run on parallel threads, each taking the next fold not yet
    // started. Each fold's fits are deterministic, so the model does not depend on the thread
    // count.
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(folds);
    let next_fold = AtomicUsize::new(0);
    let (fit_done, fits_reported) = mpsc::channel::<()>();
    // A worker's error carries its fold, so that the lowest failing fold is reported.
    type FoldError = (usize, ModelError);
    let per_thread: Vec<Result<Vec<FoldScores>, FoldError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (next_fold, assignment, fit_done) = (&next_fold, &assignment, fit_done.clone());
                scope.spawn(move || {
                    let mut scores = Vec::new();
                    loop {
                        let fold = next_fold.fetch_add(1, Ordering::Relaxed);
                        if fold >= folds {
                            return Ok(scores);
                        }
                        match score_fold(examples, assignment, fold, options, &fit_done) {
                            Ok(fold_scores) => scores.extend(fold_scores),
                            Err(error) => {
                                // No other fold is started: its work would be thrown away.
                                next_fold.store(folds, Ordering::Relaxed);
                                return Err((fold, error));
                            }
                        }
                    }
                })
            })
            .collect();
        // The workers hold the only senders left, so the loop ends when they all finish.
        drop(fit_done);
        for () in fits_reported {
            fits_done += 1;
            on_fit(fits_done, total_fits);
        }
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    let error = ModelError::Training("a fitting thread panicked".to_owned());
                    Err((usize::MAX, error))
                })
            })
            .collect()
    });
    let mut first_error: Option<FoldError> = None;
    for scores in per_thread {
        match scores {
            Ok(scores) => {
                for (a, held_out) in scores {
                    for (index, logit) in held_out {
                        out_of_fold[a][index] = logit;
                    }
                }
            }
            Err(error) if first_error.as_ref().is_none_or(|first| error.0 < first.0) => {
                first_error = Some(error);
            }
            Err(_) => {}
        }
    }
    if let Some((_, error)) = first_error {
        return Err(error);
    }

    let mut results = Vec::with_capacity(options.alphas.len());
    let mut best: Option<(usize, Calibration, f64)> = None;
    for (a, &alpha) in options.alphas.iter().enumerate() {
        let logits: Vec<(f64, bool)> = out_of_fold[a]
            .iter()
            .copied()
            .zip(labels.iter().copied())
            .collect();
        let calibration = Calibration::fit(&logits);
        let calibrated: Vec<(f64, bool)> = logits
            .iter()
            .map(|&(z, spam)| (calibration.probability(z), spam))
            .collect();
        let loss = log_loss(&calibrated);
        results.push(CrossValidationResult {
            alpha,
            log_loss: loss,
            roc_auc: roc_auc(&calibrated),
        });
        if best.is_none_or(|(_, _, best_loss)| loss < best_loss) {
            best = Some((a, calibration, loss));
        }
    }
    // validate_options guarantees at least one penalty, so `best` is set.
    let (chosen, calibration, _) = best.expect("at least one penalty was tried");
    let chosen_alpha = options.alphas[chosen];
    let out_of_fold_scores: Vec<(f64, bool)> = out_of_fold[chosen]
        .iter()
        .zip(&labels)
        .map(|(&z, &spam)| (calibration.probability(z), spam))
        .collect();
    let threshold = options
        .threshold
        .unwrap_or_else(|| threshold_for_ham_fpr(&out_of_fold_scores, options.max_ham_fpr));
    let list_mail: Vec<bool> = examples.iter().map(|e| is_list_mail(&e.tokens)).collect();
    let (threshold, list_mail_threshold) =
        if options.list_mail_threshold && options.threshold.is_none() {
            let (list, other) =
                thresholds_for_parts(&out_of_fold_scores, &list_mail, options.max_ham_fpr);
            (other, Some(list))
        } else {
            (threshold, None)
        };
    // Each out-of-fold score against the threshold of its own kind of mail.
    let thresholds: Vec<f64> = list_mail
        .iter()
        .map(|&list| match list_mail_threshold {
            Some(list_threshold) if list => list_threshold,
            _ => threshold,
        })
        .collect();
    let out_of_fold_confusion = confusion_at(&out_of_fold_scores, &thresholds);

    let (vocabulary, vectors) = vocabulary_and_vectors(examples.iter(), &options.features);
    // NOTE: the calibration and threshold come from fold models fitted on (k-1)/k of the data.
    // The final model is fitted on all of it, so its logits run slightly larger than theirs.
    let Fitted {
        weights, intercept, ..
    } = fit(
        &design_matrix(&vectors, &labels, vocabulary.len()),
        chosen_alpha,
        options.max_iterations,
        None,
    )?;
    on_fit(total_fits, total_fits);

    let training_set_sha256 = training_set_sha256(examples);
    let mut model = Model {
        version: String::new(),
        threshold,
        list_mail_threshold,
        intercept,
        calibration,
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
            cross_validation: CrossValidation {
                folds: options.folds,
                results,
                chosen_alpha,
                ham_fpr: out_of_fold_confusion.ham_false_positive_rate(),
                spam_recall: out_of_fold_confusion.spam_recall(),
            },
            training_accuracy: 0.0,
            training_auc: 0.0,
            refit_of: None,
        },
    };

    let scored: Vec<(f64, bool)> = vectors
        .iter()
        .zip(&labels)
        .map(|(vector, &spam)| (model.probability(vector), spam))
        .collect();
    let confusion = confusion_at(&scored, &thresholds);
    model.training.training_accuracy = confusion.accuracy();
    model.training.training_auc = roc_auc(&scored);
    model.version = model_version(&model.training.training_set_sha256, &model);
    Ok(model)
}

fn validate_options(options: &TrainOptions, smallest_class: usize) -> Result<(), ModelError> {
    if options.alphas.is_empty() {
        return Err(ModelError::InvalidOptions(
            "no L2 penalty (alpha) to try; give at least one".to_owned(),
        ));
    }
    if let Some(alpha) = options
        .alphas
        .iter()
        .find(|a| !(a.is_finite() && **a > 0.0))
    {
        return Err(ModelError::InvalidOptions(format!(
            "L2 penalty {alpha} must be a positive number"
        )));
    }
    if options.folds < 2 || options.folds as usize > smallest_class {
        return Err(ModelError::InvalidOptions(format!(
            "{} folds is outside 2..={smallest_class}; every fold needs messages of both classes",
            options.folds
        )));
    }
    if let Some(problem) = options.features.character_grams.and_then(|g| g.problem()) {
        return Err(ModelError::InvalidOptions(problem));
    }
    if !(0.0..=1.0).contains(&options.max_ham_fpr) {
        return Err(ModelError::InvalidOptions(format!(
            "maximum ham false-positive rate {} is outside [0, 1]",
            options.max_ham_fpr
        )));
    }
    if let Some(threshold) = options.threshold
        && !(0.0..=1.0).contains(&threshold)
    {
        return Err(ModelError::InvalidThreshold(threshold));
    }
    Ok(())
}

/// Counts (probability, is spam) pairs against the threshold at the same index.
fn confusion_at(scores: &[(f64, bool)], thresholds: &[f64]) -> Confusion {
    let mut confusion = Confusion::default();
    for (&(probability, spam), &threshold) in scores.iter().zip(thresholds) {
        confusion.add(probability >= threshold, spam);
    }
    confusion
}

/// Held-out logits of one fold: per penalty (index into `TrainOptions::alphas`), the
/// (example index, logit) of each held-out example.
type FoldScores = (usize, Vec<(usize, f64)>);

/// Builds the fold's vocabulary from its training part, fits one model per penalty and scores
/// the held-out part. Sends one message on `fit_done` after each fit.
///
/// The penalties are fitted from the largest down, each starting from the previous solution:
/// a smaller penalty moves the optimum only a little, so the solver needs fewer steps than
/// from zero.
fn score_fold(
    examples: &[Example],
    assignment: &[usize],
    fold: usize,
    options: &TrainOptions,
    fit_done: &mpsc::Sender<()>,
) -> Result<Vec<FoldScores>, ModelError> {
    let training: Vec<&Example> = examples
        .iter()
        .zip(assignment)
        .filter(|(_, f)| **f != fold)
        .map(|(e, _)| e)
        .collect();
    let (vocabulary, vectors) = vocabulary_and_vectors(training.iter().copied(), &options.features);
    let targets: Vec<bool> = training.iter().map(|e| e.label == Label::Spam).collect();
    let dataset = design_matrix(&vectors, &targets, vocabulary.len());
    let held_out: Vec<(usize, FeatureVector)> = (0..examples.len())
        .filter(|&i| assignment[i] == fold)
        .map(|i| (i, vocabulary.vectorize(&examples[i].tokens)))
        .collect();

    let mut order: Vec<usize> = (0..options.alphas.len()).collect();
    order.sort_by(|&a, &b| options.alphas[b].total_cmp(&options.alphas[a]));
    let mut scores = Vec::with_capacity(order.len());
    let mut previous: Option<Fitted> = None;
    for a in order {
        let fitted = fit(
            &dataset,
            options.alphas[a],
            options.max_iterations,
            previous.as_ref(),
        )?;
        let logits = held_out
            .iter()
            .map(|(index, vector)| (*index, logit(&fitted.weights, fitted.intercept, vector)))
            .collect();
        scores.push((a, logits));
        previous = Some(fitted);
        // The receiver only counts fits for the progress bar, so a closed channel loses nothing.
        let _ = fit_done.send(());
    }
    Ok(scores)
}

/// Chooses the vocabulary from the examples and maps each of them through it.
pub(crate) fn vocabulary_and_vectors<'a>(
    examples: impl Iterator<Item = &'a Example> + Clone,
    settings: &FeatureSettings,
) -> (Vocabulary, Vec<FeatureVector>) {
    let vocabulary = Vocabulary::build(
        examples
            .clone()
            .map(|e| (e.tokens.as_slice(), e.label == Label::Spam)),
        settings,
    );
    let vectors = examples.map(|e| vocabulary.vectorize(&e.tokens)).collect();
    (vocabulary, vectors)
}

/// Lays sparse feature vectors out as the dense matrix linfa-logistic fits on.
///
/// The matrix is column-major. linfa-logistic's gradient multiplies the transposed matrix by a
/// vector, which ndarray (without BLAS) computes as one dot product per row of the transpose.
/// In column-major order those rows are contiguous. In row-major order their elements are a
/// vocabulary's length apart, so the gradient waits on cache misses.
pub(crate) fn design_matrix(
    vectors: &[FeatureVector],
    is_spam: &[bool],
    features: usize,
) -> Dataset<f32, bool, Ix1> {
    let mut records = Array2::<f32>::zeros((vectors.len(), features).f());
    for (row, vector) in vectors.iter().enumerate() {
        for &(index, value) in &vector.entries {
            records[[row, index as usize]] = value;
        }
    }
    let targets: Array1<bool> = is_spam.iter().copied().collect();
    Dataset::new(records, targets)
}

/// A fitted logistic regression.
pub(crate) struct Fitted {
    /// Weights oriented so that a positive logit means spam.
    pub weights: Vec<f32>,
    pub intercept: f32,
    /// The solver's own parameters (weights, then intercept, in its class orientation), to
    /// start another fit on the same data from.
    solver_params: Array1<f32>,
}

/// Fits L2-regularized logistic regression with linfa-logistic, from zero or from `start`, an
/// earlier fit on the same dataset.
pub(crate) fn fit(
    dataset: &Dataset<f32, bool, Ix1>,
    alpha: f64,
    max_iterations: u64,
    start: Option<&Fitted>,
) -> Result<Fitted, ModelError> {
    let mut solver = LogisticRegression::default()
        .alpha(alpha as f32)
        .max_iterations(max_iterations)
        .with_intercept(true);
    if let Some(start) = start {
        solver = solver.initial_params(start.solver_params.clone());
    }
    let fitted = solver
        .fit(dataset)
        .map_err(|error| ModelError::Training(error.to_string()))?;

    // linfa-logistic models the probability of its "positive" class, which is the more frequent
    // one (the first seen on a tie). Orient the weights so the model always gives P(spam).
    let orientation = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let weights: Vec<f32> = fitted.params().iter().map(|w| w * orientation).collect();
    let intercept = fitted.intercept();
    let mut solver_params = fitted.params().to_vec();
    solver_params.push(intercept);
    Ok(Fitted {
        weights,
        intercept: intercept * orientation,
        solver_params: Array1::from(solver_params),
    })
}

/// Computes the uncalibrated logit of a feature vector whose indices all have weights.
fn logit(weights: &[f32], intercept: f32, vector: &FeatureVector) -> f64 {
    let mut logit = f64::from(intercept);
    for &(index, value) in &vector.entries {
        logit += f64::from(weights[index as usize] * value);
    }
    logit
}

/// A version name that changes whenever the training data, the settings or the fitted model
/// change. The model's own numbers are part of it, so two builds that tokenize the same mail
/// differently give two versions even with one tokenizer version number.
pub(crate) fn model_version(training_digest: &str, model: &Model) -> String {
    let mut hasher = Sha256::new();
    hasher.update(training_digest.as_bytes());
    // These hold only numbers, strings and small structs, so they always serialize.
    hasher.update(serde_json::to_vec(&model.training.options).expect("options serialize"));
    hasher.update(serde_json::to_vec(&model.features).expect("feature settings serialize"));
    hasher.update(serde_json::to_vec(&model.calibration).expect("calibration serializes"));
    hasher.update(model.threshold.to_le_bytes());
    if let Some(threshold) = model.list_mail_threshold {
        hasher.update(threshold.to_le_bytes());
    }
    hasher.update(model.intercept.to_le_bytes());
    for token in model.vocabulary.tokens() {
        hasher.update(token.as_bytes());
        hasher.update([0]);
    }
    for weight in &model.weights {
        hasher.update(weight.to_le_bytes());
    }
    format!(
        "lr{FORMAT_VERSION}-{}",
        &hex::encode(hasher.finalize())[..12]
    )
}

/// The maximum length of a model version, in characters. Versions that `spamctl train` writes, such as
/// `lr2-6e7e24281df9`, are 16 characters; logs, metrics and responses carry the version.
const MAX_VERSION_CHARS: usize = 128;

/// Returns what makes a parsed model file unusable, beyond its shape and thresholds.
fn file_problem(file: &ModelFile) -> Option<String> {
    let version = &file.model_version;
    if version.is_empty()
        || version.chars().count() > MAX_VERSION_CHARS
        || version.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        let start: String = version.chars().take(40).collect();
        return Some(format!(
            "model_version {start:?} is not a version: it needs 1 to {MAX_VERSION_CHARS} \
             characters without white space or control characters, such as `lr2-6e7e24281df9`"
        ));
    }
    if file.vocabulary.is_empty() {
        return Some(
            "the vocabulary is empty, so every message gets the same score; train the model on \
             mail with `spamctl train`"
                .to_owned(),
        );
    }
    if file.features.max_vocabulary == 0 {
        return Some(
            "features.max_vocabulary is 0, so a retrain would keep no token; set it to the \
             vocabulary size the model was trained with, such as 8000"
                .to_owned(),
        );
    }
    let slope = file.calibration.slope;
    if !(slope.is_finite() && slope > 0.0) {
        return Some(format!(
            "calibration.slope {slope} is not a positive number, so the spam probability would \
             not rise with the evidence of spam; retrain the model"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::Limits;
    use crate::features::CharacterGrams;

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
            alphas: vec![0.01, 0.1],
            folds: 3,
            threshold: Some(0.5),
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
    fn list_mail_gets_its_own_threshold() {
        let mut options = options();
        options.threshold = None;
        options.list_mail_threshold = true;
        // Half of each class came through a mailing list.
        let mut set = toy_set();
        for (index, example) in set.iter_mut().enumerate() {
            if index % 2 == 0 {
                example.tokens.push(LIST_MAIL_TOKEN.to_owned());
            }
        }
        let model = train(&set, &options, "2026-01-01T00:00:00Z".into()).unwrap();
        let list_threshold = model.list_mail_threshold().unwrap();
        let loaded = Model::from_json(&model.to_json()).unwrap();
        assert_eq!(loaded, model);

        let words = vec!["b:review".to_owned()];
        let mut list_words = words.clone();
        list_words.push(LIST_MAIL_TOKEN.to_owned());
        assert_eq!(model.score_tokens(&words).threshold, model.threshold());
        assert_eq!(model.score_tokens(&list_words).threshold, list_threshold);

        let fixed = model.with_threshold(0.7).unwrap();
        assert_eq!(fixed.list_mail_threshold(), None);
        assert_eq!(fixed.score_tokens(&list_words).threshold, 0.7);
    }

    #[test]
    fn rejects_list_mail_threshold_outside_unit_interval() {
        let model = train(&toy_set(), &options(), "2026-01-01T00:00:00Z".into()).unwrap();
        let json = model.to_json().replacen(
            "\"threshold\":",
            "\"list_mail_threshold\":1.5,\"threshold\":",
            1,
        );
        assert!(matches!(
            Model::from_json(&json),
            Err(ModelError::InvalidThreshold(threshold)) if threshold == 1.5
        ));
    }

    /// Returns the toy model's file with one field changed.
    fn toy_file_with(pointer: &str, value: serde_json::Value) -> String {
        let model = train(&toy_set(), &options(), String::new()).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
        *file.pointer_mut(pointer).unwrap() = value;
        file.to_string()
    }

    #[test]
    fn rejects_thresholds_that_decide_nothing() {
        for threshold in [0.0, 1.0] {
            let json = toy_file_with("/threshold", threshold.into());
            let error = Model::from_json(&json).unwrap_err();
            assert!(matches!(error, ModelError::InvalidThreshold(t) if t == threshold));
            assert!(error.to_string().contains("(0, 1)"), "{error}");
        }
    }

    #[test]
    fn rejects_unusable_model_files() {
        let cases = [
            ("/model_version", serde_json::json!(""), "model_version"),
            ("/model_version", serde_json::json!("a\nb"), "model_version"),
            ("/model_version", "v".repeat(200).into(), "model_version"),
            ("/calibration/slope", 0.0.into(), "calibration.slope"),
            ("/calibration/slope", (-1.0).into(), "calibration.slope"),
            ("/features/max_vocabulary", 0.into(), "max_vocabulary"),
        ];
        for (pointer, value, named) in cases {
            let error = Model::from_json(&toy_file_with(pointer, value.clone())).unwrap_err();
            assert!(
                matches!(error, ModelError::InvalidSettings(_)),
                "{pointer} = {value}: {error}"
            );
            assert!(error.to_string().contains(named), "{error}");
        }
        let mut file: serde_json::Value =
            serde_json::from_str(&toy_file_with("/weights", serde_json::json!([]))).unwrap();
        file["vocabulary"] = serde_json::json!([]);
        let error = Model::from_json(&file.to_string()).unwrap_err();
        assert!(error.to_string().contains("vocabulary is empty"), "{error}");
    }

    #[test]
    fn model_file_round_trips() {
        let model = train(&toy_set(), &options(), "2026-01-01T00:00:00Z".into()).unwrap();
        let loaded = Model::from_json(&model.to_json()).unwrap();
        assert_eq!(loaded, model);
        assert!(loaded.version().starts_with("lr2-"));
    }

    #[test]
    fn model_version_follows_the_fitted_numbers() {
        let model = train(&toy_set(), &options(), String::new()).unwrap();
        let again = train(&toy_set(), &options(), "2027-01-01T00:00:00Z".into()).unwrap();
        assert_eq!(
            again.version(),
            model.version(),
            "training is deterministic"
        );

        // Same data and settings, other weights: what another tokenizer build would give.
        let mut changed = model.clone();
        changed.weights[0] += 0.5;
        let digest = &model.training.training_set_sha256;
        assert_eq!(model_version(digest, &model), model.version());
        assert_ne!(model_version(digest, &changed), model.version());
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

    #[test]
    fn rejects_version_one_file_by_version() {
        // A format 1 file lacks the calibration, so only the version check can name the cause.
        let json =
            r#"{"format":"spamflow-logistic-regression","format_version":1,"threshold":0.5}"#;
        let error = Model::from_json(json).unwrap_err();
        assert!(
            matches!(
                error,
                ModelError::UnsupportedVersion {
                    found: 1,
                    supported: FORMAT_VERSION
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("spamctl train"), "{error}");
    }

    #[test]
    fn rejects_other_tokenizer_version() {
        let model = train(&toy_set(), &options(), String::new()).unwrap();
        let json = model.to_json().replace(
            &format!(
                "\"tokenizer_version\":{}",
                FeatureSettings::TOKENIZER_VERSION
            ),
            "\"tokenizer_version\":1",
        );
        assert!(matches!(
            Model::from_json(&json),
            Err(ModelError::TokenizerMismatch { found: 1, .. })
        ));
    }

    fn options_with_grams() -> TrainOptions {
        let mut options = options();
        options.features.character_grams = Some(CharacterGrams::default());
        options
    }

    #[test]
    fn gram_block_round_trips_and_explains() {
        let model = train(&toy_set(), &options_with_grams(), String::new()).unwrap();
        let loaded = Model::from_json(&model.to_json()).unwrap();
        assert_eq!(loaded, model);
        // "prizes" is not a training word, but it shares grams with "prize".
        let email = Email::from_plain_text("prizes", Limits::default()).unwrap();
        let score = loaded.score(&email);
        // Its strongest features are those grams, toward spam.
        assert!(score.top_features[0].0.starts_with("c:"), "{score:?}");
        assert!(
            score
                .top_features
                .iter()
                .any(|(t, c)| t == "c:<pri" && *c > 0.0),
            "{score:?}"
        );
    }

    #[test]
    fn rejects_unusable_gram_settings() {
        let model = train(&toy_set(), &options_with_grams(), String::new()).unwrap();
        // The top-level `features` come last; `training.options` has a copy of them.
        let settings = ",\"character_grams\":{\"length\":4,\"max_vocabulary\":16000,\"scale\":0.5}";
        for (from, to, reason) in [
            ("\"length\":4", "\"length\":0", "length 0 is outside"),
            ("\"length\":4", "\"length\":4294967295", "outside 1..=32"),
            ("\"length\":4", "\"length\":5", "not a gram of 5 characters"),
            ("\"scale\":0.5", "\"scale\":-1.0", "scale -1 must be"),
            ("\"scale\":0.5", "\"scale\":1e30", "no larger than 100"),
            (settings, "", "`features.character_grams` is missing"),
        ] {
            let original = model.to_json();
            let at = original
                .rfind(from)
                .expect("the setting is in the model file");
            let json = format!("{}{to}{}", &original[..at], &original[at + from.len()..]);
            let error = Model::from_json(&json).unwrap_err();
            assert!(
                matches!(error, ModelError::InvalidSettings(_)),
                "{to}: {error}"
            );
            assert!(error.to_string().contains(reason), "{to}: {error}");
        }
        let json = model.to_json().replacen("\"c:<at>\"", "\"c:<cas\"", 1);
        let error = Model::from_json(&json).unwrap_err();
        assert!(matches!(error, ModelError::DuplicateEntry(_)), "{error}");
        assert!(error.to_string().contains("\"c:<cas\""), "{error}");

        let mut options = options_with_grams();
        if let Some(grams) = &mut options.features.character_grams {
            grams.scale = f32::NAN;
        }
        let error = train(&toy_set(), &options, String::new()).unwrap_err();
        assert!(error.to_string().contains("scale NaN"), "{error}");
    }

    #[test]
    fn training_records_cross_validation() {
        let options = TrainOptions {
            threshold: None,
            ..options()
        };
        let model = train(&toy_set(), &options, String::new()).unwrap();
        let cv = &model.training().cross_validation;
        assert_eq!(cv.folds, 3);
        assert_eq!(cv.results.len(), 2);
        assert!(options.alphas.contains(&cv.chosen_alpha));
        // The toy classes separate, so no out-of-fold ham reaches the tuned threshold.
        assert_eq!(cv.ham_fpr, 0.0);
        assert!(model.threshold() > 0.0);
        assert!(model.threshold() < 1.0);
        assert!(model.calibration().slope > 0.0, "{:?}", model.calibration());
    }

    #[test]
    fn rejects_invalid_training_options() {
        for (options, expected) in [
            (
                TrainOptions {
                    alphas: vec![],
                    ..options()
                },
                "no L2 penalty",
            ),
            (
                TrainOptions {
                    alphas: vec![-1.0],
                    ..options()
                },
                "positive",
            ),
            (
                TrainOptions {
                    folds: 1,
                    ..options()
                },
                "folds",
            ),
            (
                TrainOptions {
                    folds: 13,
                    ..options()
                },
                "folds",
            ),
            (
                TrainOptions {
                    max_ham_fpr: 2.0,
                    ..options()
                },
                "false-positive",
            ),
        ] {
            let error = train(&toy_set(), &options, String::new()).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn explanation_splits_directions() {
        let model = train(&toy_set(), &options(), String::new()).unwrap();
        let email =
            Email::from_plain_text("win cash and review the patch", Limits::default()).unwrap();
        let explanation = model.explain(&email, 3);
        assert!(!explanation.toward_spam.is_empty());
        assert!(!explanation.toward_ham.is_empty());
        assert!(explanation.toward_spam.len() <= 3);
        assert!(explanation.toward_spam.iter().all(|(_, c)| *c > 0.0));
        assert!(explanation.toward_ham.iter().all(|(_, c)| *c < 0.0));
        assert!(explanation.toward_spam.windows(2).all(|w| w[0].1 >= w[1].1));
    }
}

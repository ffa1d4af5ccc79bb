//! Refitting: one logistic-regression fit on a new training set with the settings of an
//! existing model, for the learning loop that folds user corrections into the model.
//!
//! Full training runs k-fold cross-validation over a grid of penalties, which costs
//! `folds × penalties + 1` fits. A refit costs one: it reuses the parent model's feature
//! settings, chosen L2 penalty, solver iterations, Platt calibration and threshold, and builds
//! a new vocabulary and weights from the given examples.
//!
//! NOTE: the reused calibration and threshold were fitted to the parent's out-of-fold scores.
//! They stay a good fit while the new training set resembles the parent's, such as the same
//! base corpus plus a few corrections. For a very different set, train from scratch instead.

use crate::metrics::{Confusion, roc_auc};
use crate::model::{
    Example, Fitted, Label, Model, ModelError, TrainingInfo, design_matrix, fit, model_version,
    training_set_sha256, vocabulary_and_vectors,
};

/// Refits a model on `examples` with the settings of `parent`, without cross-validation.
///
/// The new model's version depends on the training set, the parent's options and the
/// parent's version, so refitting the same examples on the same parent gives the same
/// version. `trained_at` is the RFC 3339 time to record.
///
/// # Errors
///
/// Returns [`ModelError::OneClass`] unless both classes are present,
/// [`ModelError::InvalidOptions`] when the parent's chosen penalty is not a positive number, and
/// [`ModelError::Training`] when the solver fails.
pub fn refit(
    examples: &[Example],
    parent: &Model,
    trained_at: String,
) -> Result<Model, ModelError> {
    let spam = examples.iter().filter(|e| e.label == Label::Spam).count();
    let ham = examples.len() - spam;
    if spam == 0 || ham == 0 {
        return Err(ModelError::OneClass { spam, ham });
    }
    let alpha = parent.training.cross_validation.chosen_alpha;
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(ModelError::InvalidOptions(format!(
            "model {} has L2 penalty {alpha}, which is not a positive number; train a new base \
             model with `spamctl train`",
            parent.version
        )));
    }

    let (vocabulary, vectors) = vocabulary_and_vectors(examples.iter(), &parent.features);
    let labels: Vec<bool> = examples.iter().map(|e| e.label == Label::Spam).collect();
    let Fitted {
        weights, intercept, ..
    } = fit(
        &design_matrix(&vectors, &labels, vocabulary.len()),
        alpha,
        parent.training.options.max_iterations,
        None,
    )?;

    let training_set_sha256 = training_set_sha256(examples);
    let mut model = Model {
        version: String::new(),
        threshold: parent.threshold,
        list_mail_threshold: parent.list_mail_threshold,
        intercept,
        calibration: parent.calibration,
        weights,
        vocabulary,
        features: parent.features.clone(),
        training: TrainingInfo {
            training_set_sha256,
            messages: examples.len() as u64,
            spam: spam as u64,
            ham: ham as u64,
            options: parent.training.options.clone(),
            trained_at,
            cross_validation: parent.training.cross_validation.clone(),
            training_accuracy: 0.0,
            training_auc: 0.0,
            refit_of: Some(parent.version.clone()),
        },
    };

    let scored: Vec<(f64, bool)> = vectors
        .iter()
        .zip(&labels)
        .map(|(vector, &spam)| (model.probability(vector), spam))
        .collect();
    model.training.training_accuracy = Confusion::from_scores(&scored, model.threshold).accuracy();
    model.training.training_auc = roc_auc(&scored);
    // The parent's version joins the digest, so refits of one set on two parents differ.
    let digest = format!(
        "{} refit of {}",
        model.training.training_set_sha256, parent.version
    );
    model.version = model_version(&digest, &model);
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::{Email, Limits};
    use crate::features::FeatureSettings;
    use crate::model::{TrainOptions, train};

    fn example(text: &str, label: Label) -> Example {
        let email = Email::from_plain_text(text, Limits::default()).unwrap();
        Example::new(&email, label, text.as_bytes())
    }

    fn examples(spam: &[&str], ham: &[&str]) -> Vec<Example> {
        let mut set = Vec::new();
        for _ in 0..3 {
            set.extend(spam.iter().map(|t| example(t, Label::Spam)));
            set.extend(ham.iter().map(|t| example(t, Label::Ham)));
        }
        set
    }

    fn parent() -> Model {
        let options = TrainOptions {
            features: FeatureSettings {
                min_document_frequency: 1,
                ..FeatureSettings::default()
            },
            alphas: vec![0.1],
            folds: 3,
            threshold: Some(0.5),
            ..TrainOptions::default()
        };
        let set = examples(
            &["win cash prize now", "cheap pills discount offer"],
            &["meeting notes from the review", "the build failed again"],
        );
        train(&set, &options, String::new()).unwrap()
    }

    #[test]
    fn refit_learns_a_corrected_label() {
        let parent = parent();
        let corrected = "quarterly newsletter with a discount offer";
        let before = parent.score(&Email::from_plain_text(corrected, Limits::default()).unwrap());

        let mut set = examples(
            &["win cash prize now", "cheap pills discount offer"],
            &["meeting notes from the review", "the build failed again"],
        );
        set.push(example(corrected, Label::Ham));
        let model = refit(&set, &parent, "2026-01-01T00:00:00Z".into()).unwrap();
        let after = model.score(&Email::from_plain_text(corrected, Limits::default()).unwrap());

        assert!(
            after.probability < before.probability,
            "{before:?} {after:?}"
        );
        assert_eq!(after.label, Label::Ham);
        assert_ne!(model.version(), parent.version());
        assert_eq!(model.training().refit_of.as_deref(), Some(parent.version()));
        assert_eq!(model.threshold(), parent.threshold());
        assert_eq!(model.calibration(), parent.calibration());
        assert_eq!(model.training().messages, 13);
    }

    #[test]
    fn refit_is_deterministic_and_round_trips() {
        let parent = parent();
        let set = examples(&["free money offer"], &["notes from the meeting"]);
        let first = refit(&set, &parent, String::new()).unwrap();
        let second = refit(&set, &parent, String::new()).unwrap();
        assert_eq!(first.version(), second.version());
        assert_eq!(Model::from_json(&first.to_json()).unwrap(), first);
    }

    #[test]
    fn refit_rejects_one_class() {
        let set = examples(&[], &["notes from the meeting"]);
        assert!(matches!(
            refit(&set, &parent(), String::new()),
            Err(ModelError::OneClass { spam: 0, ham: 3 })
        ));
    }
}

//! The pieces of training that turn raw logistic-regression scores into a usable detector:
//! stratified cross-validation folds, Platt scaling, and a threshold chosen for a ham
//! false-positive rate.
//!
//! All of them work on out-of-fold scores, that is scores of training messages from a model
//! that did not see them, so the choices estimate behaviour on unseen mail rather than on the
//! training set.

use serde::{Deserialize, Serialize};

/// Assigns each example to one of `folds` cross-validation folds.
///
/// Examples of each class are ordered by `keys` (a content digest, so the assignment does not
/// depend on file order) and dealt round-robin, so every fold contains about the same share of
/// each class. `folds` below 2 is treated as 2.
pub fn stratified_folds(labels: &[bool], keys: &[[u8; 32]], folds: usize) -> Vec<usize> {
    let folds = folds.max(2);
    let mut assignment = vec![0; labels.len()];
    for class in [true, false] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.sort_unstable_by_key(|&i| keys[i]);
        for (rank, index) in members.into_iter().enumerate() {
            assignment[index] = rank % folds;
        }
    }
    assignment
}

/// Platt scaling: `P(spam) = sigmoid(slope × logit + offset)`, fitted on out-of-fold logits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub slope: f64,
    pub offset: f64,
}

impl Calibration {
    /// The identity: probabilities are the model's own.
    pub const IDENTITY: Self = Self {
        slope: 1.0,
        offset: 0.0,
    };

    /// Returns the calibrated spam probability of a raw logit.
    pub fn probability(&self, logit: f64) -> f64 {
        sigmoid(self.slope * logit + self.offset)
    }

    /// Fits slope and offset to (logit, is spam) pairs by Newton's method on the log loss.
    ///
    /// Targets are smoothed to `(N₊ + 1) / (N₊ + 2)` for spam and
    /// `1 / (N₋ + 2)` for ham, so perfectly separated scores still give a finite slope. Returns
    /// [`Calibration::IDENTITY`] when either class is missing.
    pub fn fit(scores: &[(f64, bool)]) -> Self {
        let positives = scores.iter().filter(|(_, spam)| *spam).count() as f64;
        let negatives = scores.len() as f64 - positives;
        if positives == 0.0 || negatives == 0.0 {
            return Self::IDENTITY;
        }
        let high = (positives + 1.0) / (positives + 2.0);
        let low = 1.0 / (negatives + 2.0);
        let targets: Vec<f64> = scores
            .iter()
            .map(|&(_, spam)| if spam { high } else { low })
            .collect();

        let loss = |slope: f64, offset: f64| -> f64 {
            scores
                .iter()
                .zip(&targets)
                .map(|(&(logit, _), &t)| {
                    let z = slope * logit + offset;
                    // log(1 + e^z) - t z, written to stay finite for large |z|.
                    z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z
                })
                .sum()
        };

        let (mut slope, mut offset) = (1.0, 0.0);
        let mut current = loss(slope, offset);
        for _ in 0..100 {
            let (mut g_slope, mut g_offset) = (0.0, 0.0);
            let (mut h_ss, mut h_so, mut h_oo) = (1e-12, 0.0, 1e-12);
            for (&(logit, _), &t) in scores.iter().zip(&targets) {
                let p = sigmoid(slope * logit + offset);
                let residual = p - t;
                let weight = p * (1.0 - p);
                g_slope += residual * logit;
                g_offset += residual;
                h_ss += weight * logit * logit;
                h_so += weight * logit;
                h_oo += weight;
            }
            let determinant = h_ss * h_oo - h_so * h_so;
            if determinant.abs() < 1e-300 {
                break;
            }
            let step_slope = (h_oo * g_slope - h_so * g_offset) / determinant;
            let step_offset = (h_ss * g_offset - h_so * g_slope) / determinant;

            // Halve the Newton step until the loss goes down.
            let mut scale = 1.0;
            let mut improved = false;
            while scale > 1e-8 {
                let next = loss(slope - scale * step_slope, offset - scale * step_offset);
                if next < current {
                    slope -= scale * step_slope;
                    offset -= scale * step_offset;
                    improved = current - next > 1e-12 * current.abs().max(1.0);
                    current = next;
                    break;
                }
                scale /= 2.0;
            }
            if !improved {
                break;
            }
        }
        Self { slope, offset }
    }
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Mean log loss of (probability, is spam) pairs, with probabilities clamped away from 0 and 1
/// so one confident mistake costs a lot but not infinity.
pub fn log_loss(scores: &[(f64, bool)]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let total: f64 = scores
        .iter()
        .map(|&(p, spam)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if spam { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / scores.len() as f64
}

/// Returns the lowest threshold at which at most `max_ham_fpr` of the ham in (probability, is
/// spam) pairs scores at or above it.
///
/// With `m = floor(max_ham_fpr × ham)` allowed false positives, the threshold lies halfway
/// between the (m+1)-th highest ham score and the next higher score of either class, so it
/// keeps a margin on both sides. It is 0.5 when there is no ham, and never 0.
pub fn threshold_for_ham_fpr(scores: &[(f64, bool)], max_ham_fpr: f64) -> f64 {
    threshold_allowing(scores, allowed_false_positives(scores, max_ham_fpr))
}

/// Returns `floor(max_ham_fpr × ham)`, the false positives that `max_ham_fpr` allows.
fn allowed_false_positives(scores: &[(f64, bool)], max_ham_fpr: f64) -> usize {
    let ham = scores.iter().filter(|(_, spam)| !*spam).count();
    (max_ham_fpr.max(0.0) * ham as f64).floor() as usize
}

/// Returns the threshold of [`threshold_for_ham_fpr`] for `allowed` false positives.
fn threshold_allowing(scores: &[(f64, bool)], allowed: usize) -> f64 {
    let mut ham: Vec<f64> = scores
        .iter()
        .filter(|(_, spam)| !*spam)
        .map(|(p, _)| *p)
        .collect();
    if ham.is_empty() {
        return 0.5;
    }
    ham.sort_unstable_by(|a, b| b.total_cmp(a));
    let boundary = ham[allowed.min(ham.len() - 1)];
    let next_higher = scores
        .iter()
        .map(|(p, _)| *p)
        .filter(|&p| p > boundary)
        .min_by(f64::total_cmp);
    let threshold = match next_higher {
        Some(next) => (boundary + next) / 2.0,
        None => boundary + (1.0 - boundary) / 2.0,
    };
    threshold.max(f64::MIN_POSITIVE)
}

/// Returns a threshold for the scores of one part of the mail (`in_part` true) and one for the
/// rest. Together they let through as many false positives as `max_ham_fpr` allows a single
/// threshold over all scores. The allowance is split between the parts so that the most spam reaches
/// its part's threshold. Of equal splits, the one with the fewest in the part wins. A part
/// without ham gets the single threshold.
pub fn thresholds_for_parts(
    scores: &[(f64, bool)],
    in_part: &[bool],
    max_ham_fpr: f64,
) -> (f64, f64) {
    let single = threshold_for_ham_fpr(scores, max_ham_fpr);
    let allowed = allowed_false_positives(scores, max_ham_fpr);
    let part: Vec<(f64, bool)> = select(scores, in_part, true);
    let rest: Vec<(f64, bool)> = select(scores, in_part, false);
    let threshold_of = |scores: &[(f64, bool)], allowed: usize| {
        if scores.iter().any(|(_, spam)| !*spam) {
            threshold_allowing(scores, allowed)
        } else {
            single
        }
    };
    let caught = |scores: &[(f64, bool)], threshold: f64| {
        scores
            .iter()
            .filter(|&&(p, spam)| spam && p >= threshold)
            .count()
    };
    let mut best: Option<(usize, f64, f64)> = None;
    for in_part_allowed in 0..=allowed {
        let part_threshold = threshold_of(&part, in_part_allowed);
        let rest_threshold = threshold_of(&rest, allowed - in_part_allowed);
        let total = caught(&part, part_threshold) + caught(&rest, rest_threshold);
        if best.is_none_or(|(most, _, _)| total > most) {
            best = Some((total, part_threshold, rest_threshold));
        }
    }
    // The loop runs at least once, for an allowance of 0.
    let (_, part_threshold, rest_threshold) = best.expect("at least one split was tried");
    (part_threshold, rest_threshold)
}

/// Returns the scores whose `in_part` flag equals `part`.
fn select(scores: &[(f64, bool)], in_part: &[bool], part: bool) -> Vec<(f64, bool)> {
    scores
        .iter()
        .zip(in_part)
        .filter(|(_, flag)| **flag == part)
        .map(|(score, _)| *score)
        .collect()
}

/// Returns the share of spam in (probability, is spam) pairs at or above the threshold.
pub fn spam_recall_at(scores: &[(f64, bool)], threshold: f64) -> f64 {
    let spam: Vec<f64> = scores
        .iter()
        .filter(|(_, spam)| *spam)
        .map(|(p, _)| *p)
        .collect();
    if spam.is_empty() {
        return 0.0;
    }
    spam.iter().filter(|&&p| p >= threshold).count() as f64 / spam.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_get_thresholds_of_their_own() {
        // The part's ham scores low, so its spam at 0.5 can be caught; the rest's ham at 0.9
        // sets the single threshold above that spam.
        let scores = [
            (0.1, false),
            (0.3, false),
            (0.5, true),
            (0.9, false),
            (0.95, true),
        ];
        let in_part = [true, true, true, false, false];
        let single = threshold_for_ham_fpr(&scores, 0.0);
        assert!(single > 0.9, "{single}");
        assert!(single < 0.95, "{single}");
        let (part, rest) = thresholds_for_parts(&scores, &in_part, 0.0);
        assert!((part - 0.4).abs() < 1e-12, "{part}");
        assert!((rest - 0.925).abs() < 1e-12, "{rest}");
    }

    #[test]
    fn part_without_ham_gets_single_threshold() {
        let scores = [(0.2, false), (0.6, true), (0.8, true)];
        let in_part = [false, true, false];
        let (part, rest) = thresholds_for_parts(&scores, &in_part, 0.0);
        assert_eq!(part, threshold_for_ham_fpr(&scores, 0.0));
        assert!((rest - 0.5).abs() < 1e-12, "{rest}");
    }

    #[test]
    fn folds_are_stratified_and_stable() {
        let labels: Vec<bool> = (0..20).map(|i| i < 6).collect();
        let keys: Vec<[u8; 32]> = (0..20u8).map(|i| [i.wrapping_mul(37); 32]).collect();
        let folds = stratified_folds(&labels, &keys, 3);
        for fold in 0..3 {
            let spam = (0..20).filter(|&i| labels[i] && folds[i] == fold).count();
            let ham = (0..20).filter(|&i| !labels[i] && folds[i] == fold).count();
            assert_eq!(spam, 2, "fold {fold}");
            assert!((4..=5).contains(&ham), "fold {fold}: {ham}");
        }
        assert_eq!(stratified_folds(&labels, &keys, 3), folds);
    }

    #[test]
    fn platt_fit_recovers_known_scaling() {
        // Scores drawn so that P(spam | z) = sigmoid(2z - 1): at each z, the spam share of the
        // 1000 examples matches that probability.
        let mut scores = Vec::new();
        for step in -20..=20 {
            let z = f64::from(step) / 10.0;
            let spam = (sigmoid(2.0 * z - 1.0) * 1000.0).round() as usize;
            scores.extend(std::iter::repeat_n((z, true), spam));
            scores.extend(std::iter::repeat_n((z, false), 1000 - spam));
        }
        let calibration = Calibration::fit(&scores);
        assert!((calibration.slope - 2.0).abs() < 0.05, "{calibration:?}");
        assert!((calibration.offset + 1.0).abs() < 0.05, "{calibration:?}");
    }

    #[test]
    fn platt_fit_stays_finite_on_separated_scores() {
        let scores = [(-3.0, false), (-2.0, false), (2.0, true), (3.0, true)];
        let calibration = Calibration::fit(&scores);
        assert!(calibration.slope.is_finite());
        assert!(calibration.slope > 0.0);
        assert!(calibration.probability(3.0) > 0.5);
        assert!(calibration.probability(-3.0) < 0.5);
    }

    #[test]
    fn platt_fit_without_one_class_is_identity() {
        assert_eq!(
            Calibration::fit(&[(1.0, true), (2.0, true)]),
            Calibration::IDENTITY
        );
    }

    #[test]
    fn threshold_allows_target_share_of_ham() {
        // 1000 ham scored 0.000..0.999 and spam at 0.9995: a 0.1% target allows one false
        // positive, so the boundary ham is the second highest (0.998).
        let mut scores: Vec<(f64, bool)> =
            (0..1000).map(|i| (f64::from(i) / 1000.0, false)).collect();
        scores.push((0.9995, true));
        let threshold = threshold_for_ham_fpr(&scores, 0.001);
        assert!((threshold - 0.9985).abs() < 1e-12, "{threshold}");
        let false_positives = scores.iter().filter(|(p, s)| !s && *p >= threshold).count();
        assert_eq!(false_positives, 1);
        assert_eq!(spam_recall_at(&scores, threshold), 1.0);
    }

    #[test]
    fn zero_target_puts_threshold_above_all_ham() {
        let scores = [(0.2, false), (0.6, false), (0.9, true)];
        let threshold = threshold_for_ham_fpr(&scores, 0.0);
        assert!((threshold - 0.75).abs() < 1e-12, "{threshold}");
        let top = [(0.2, false), (0.9, false)];
        assert!((threshold_for_ham_fpr(&top, 0.0) - 0.95).abs() < 1e-12);
        assert_eq!(threshold_for_ham_fpr(&[(0.9, true)], 0.0), 0.5);
    }

    #[test]
    fn log_loss_of_confident_scores() {
        assert!(log_loss(&[(1.0, true), (0.0, false)]) < 1e-12);
        assert!((log_loss(&[(0.5, true)]) - 2f64.ln()).abs() < 1e-12);
    }
}

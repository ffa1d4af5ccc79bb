//! Classification metrics: confusion matrix, ROC AUC and latency percentiles.
//!
//! Spam is the positive class throughout: a false positive is ham labelled spam.

use serde::Serialize;

/// Counts of a binary classifier's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Spam labelled spam.
    pub true_positives: u64,
    /// Ham labelled spam.
    pub false_positives: u64,
    /// Ham labelled ham.
    pub true_negatives: u64,
    /// Spam labelled ham.
    pub false_negatives: u64,
}

impl Confusion {
    /// Counts outcomes of (spam probability, is spam) pairs at a threshold.
    pub fn from_scores(scores: &[(f64, bool)], threshold: f64) -> Self {
        let mut confusion = Self::default();
        for &(probability, is_spam) in scores {
            confusion.add(probability >= threshold, is_spam);
        }
        confusion
    }

    /// Records one outcome.
    pub fn add(&mut self, predicted_spam: bool, is_spam: bool) {
        match (predicted_spam, is_spam) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, false) => self.true_negatives += 1,
            (false, true) => self.false_negatives += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    pub fn spam(&self) -> u64 {
        self.true_positives + self.false_negatives
    }

    pub fn ham(&self) -> u64 {
        self.true_negatives + self.false_positives
    }

    /// Share of messages labelled correctly; 0 when there are none.
    pub fn accuracy(&self) -> f64 {
        ratio(self.true_positives + self.true_negatives, self.total())
    }

    /// Share of ham labelled spam; 0 when there is no ham.
    pub fn ham_false_positive_rate(&self) -> f64 {
        ratio(self.false_positives, self.ham())
    }

    /// Share of spam labelled spam; 0 when there is no spam.
    pub fn spam_recall(&self) -> f64 {
        ratio(self.true_positives, self.spam())
    }

    /// Share of spam verdicts that were spam; 0 when nothing was labelled spam.
    pub fn spam_precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Area under the ROC curve of (spam probability, is spam) pairs: the probability that a
/// random spam scores above a random ham, with ties counted as one half. Returns 0.5 when
/// either class is missing, since no ranking can be judged then.
pub fn roc_auc(scores: &[(f64, bool)]) -> f64 {
    let mut sorted: Vec<(f64, bool)> = scores.to_vec();
    sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = sorted.iter().filter(|(_, p)| *p).count() as f64;
    let negatives = sorted.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }

    // Mann-Whitney U: sum of the positives' ranks, with tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start;
        while end + 1 < sorted.len() && sorted[end + 1].0 == sorted[start].0 {
            end += 1;
        }
        let mean_rank = (start + end) as f64 / 2.0 + 1.0;
        let tied_positives = sorted[start..=end].iter().filter(|(_, p)| *p).count() as f64;
        rank_sum += mean_rank * tied_positives;
        start = end + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// A point of a ROC curve: the rates when every score at or above `threshold` is spam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    pub threshold: f64,
    pub ham_fpr: f64,
    pub spam_recall: f64,
}

/// A point of a precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub spam_recall: f64,
    pub spam_precision: f64,
}

/// Returns the ROC curve of (spam probability, is spam) pairs, one point per distinct score
/// from the highest down, starting at (0, 0) with an infinite threshold. Empty when either
/// class is missing.
pub fn roc_curve(scores: &[(f64, bool)]) -> Vec<RocPoint> {
    let (spam, ham) = class_counts(scores);
    if spam == 0 || ham == 0 {
        return Vec::new();
    }
    let mut points = vec![RocPoint {
        threshold: f64::INFINITY,
        ham_fpr: 0.0,
        spam_recall: 0.0,
    }];
    for (threshold, true_positives, false_positives) in cumulative_counts(scores) {
        points.push(RocPoint {
            threshold,
            ham_fpr: false_positives as f64 / ham as f64,
            spam_recall: true_positives as f64 / spam as f64,
        });
    }
    points
}

/// Returns the precision-recall curve of (spam probability, is spam) pairs, one point per
/// distinct score from the highest down. Empty when there is no spam.
pub fn precision_recall_curve(scores: &[(f64, bool)]) -> Vec<PrPoint> {
    let (spam, _) = class_counts(scores);
    if spam == 0 {
        return Vec::new();
    }
    cumulative_counts(scores)
        .into_iter()
        .map(|(threshold, true_positives, false_positives)| PrPoint {
            threshold,
            spam_recall: true_positives as f64 / spam as f64,
            spam_precision: true_positives as f64 / (true_positives + false_positives) as f64,
        })
        .collect()
}

/// Returns the highest spam recall reachable while at most `max_ham_fpr` of ham scores at or
/// above the threshold, or 0 when either class is missing.
pub fn spam_recall_at_ham_fpr(scores: &[(f64, bool)], max_ham_fpr: f64) -> f64 {
    roc_curve(scores)
        .iter()
        .filter(|point| point.ham_fpr <= max_ham_fpr + 1e-12)
        .map(|point| point.spam_recall)
        .fold(0.0, f64::max)
}

fn class_counts(scores: &[(f64, bool)]) -> (u64, u64) {
    let spam = scores.iter().filter(|(_, spam)| *spam).count() as u64;
    (spam, scores.len() as u64 - spam)
}

/// (threshold, true positives, false positives) at each distinct score, highest first. Tied
/// scores enter together, since no threshold can separate them.
fn cumulative_counts(scores: &[(f64, bool)]) -> Vec<(f64, u64, u64)> {
    let mut sorted = scores.to_vec();
    sorted.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let mut counts = Vec::new();
    let (mut true_positives, mut false_positives) = (0, 0);
    for (index, &(score, spam)) in sorted.iter().enumerate() {
        if spam {
            true_positives += 1;
        } else {
            false_positives += 1;
        }
        if sorted.get(index + 1).is_none_or(|next| next.0 != score) {
            counts.push((score, true_positives, false_positives));
        }
    }
    counts
}

/// Returns the `p`-th percentile (0 to 100) of values by the nearest-rank method, or 0 for no
/// values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_rates() {
        let scores = [
            (0.9, true),
            (0.2, true),
            (0.8, false),
            (0.1, false),
            (0.3, false),
        ];
        let confusion = Confusion::from_scores(&scores, 0.5);
        assert_eq!(confusion.true_positives, 1);
        assert_eq!(confusion.false_negatives, 1);
        assert_eq!(confusion.false_positives, 1);
        assert_eq!(confusion.true_negatives, 2);
        assert!((confusion.accuracy() - 0.6).abs() < 1e-12);
        assert!((confusion.ham_false_positive_rate() - 1.0 / 3.0).abs() < 1e-12);
        assert!((confusion.spam_recall() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn empty_confusion_has_zero_rates() {
        let confusion = Confusion::default();
        assert_eq!(confusion.accuracy(), 0.0);
        assert_eq!(confusion.spam_recall(), 0.0);
    }

    #[test]
    fn auc_of_perfect_and_inverted_rankings() {
        assert_eq!(roc_auc(&[(0.9, true), (0.8, true), (0.1, false)]), 1.0);
        assert_eq!(roc_auc(&[(0.1, true), (0.8, false), (0.9, false)]), 0.0);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(roc_auc(&[(0.5, true), (0.5, false)]), 0.5);
        // Spam beats ham in 3 of 4 pairs.
        let auc = roc_auc(&[(0.9, true), (0.4, true), (0.5, false), (0.1, false)]);
        assert!((auc - 0.75).abs() < 1e-12);
    }

    #[test]
    fn auc_without_one_class_is_half() {
        assert_eq!(roc_auc(&[(0.9, true)]), 0.5);
    }

    #[test]
    fn percentile_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }

    #[test]
    fn roc_curve_steps_through_scores() {
        let scores = [(0.9, true), (0.7, false), (0.7, true), (0.1, false)];
        let curve = roc_curve(&scores);
        let rates: Vec<(f64, f64)> = curve.iter().map(|p| (p.ham_fpr, p.spam_recall)).collect();
        assert_eq!(rates, [(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(curve[2].threshold, 0.7);
        assert!(roc_curve(&[(0.5, true)]).is_empty());
    }

    #[test]
    fn precision_recall_curve_points() {
        let scores = [(0.9, true), (0.8, false), (0.3, true)];
        let curve = precision_recall_curve(&scores);
        let points: Vec<(f64, f64)> = curve
            .iter()
            .map(|p| (p.spam_recall, p.spam_precision))
            .collect();
        assert_eq!(points, [(0.5, 1.0), (0.5, 0.5), (1.0, 2.0 / 3.0)]);
    }

    #[test]
    fn recall_at_ham_fpr_limits() {
        // 4 ham and 4 spam; one ham outscores two spam.
        let scores = [
            (0.95, true),
            (0.9, true),
            (0.8, false),
            (0.7, true),
            (0.6, true),
            (0.2, false),
            (0.1, false),
            (0.05, false),
        ];
        assert_eq!(spam_recall_at_ham_fpr(&scores, 0.0), 0.5);
        assert_eq!(spam_recall_at_ham_fpr(&scores, 0.25), 1.0);
        assert_eq!(spam_recall_at_ham_fpr(&[], 0.1), 0.0);
    }
}

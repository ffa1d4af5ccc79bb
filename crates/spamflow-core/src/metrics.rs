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
}

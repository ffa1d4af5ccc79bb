//! The figures printed at the end of `spamctl eval` and `spamctl dev`, for people and for
//! scripts.

use std::collections::BTreeMap;

use serde::Serialize;
use spamflow_core::metrics::{Confusion, percentile, spam_recall_at_ham_fpr};
use std::io::Write;

/// Spam recall at the best threshold that keeps ham FPR at or below a limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RecallAtHamFpr {
    pub ham_fpr: f64,
    pub spam_recall: f64,
}

/// The known-spam fingerprints of a run and the verdicts they changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KnownSpamEffect {
    /// TRAIN spam messages that the known-spam fingerprints were taken from.
    pub spam_messages: u64,
    /// Messages whose label differs from the model's alone because of a match.
    pub verdicts_changed: u64,
}

/// A scored run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub messages: u64,
    pub spam: u64,
    pub ham: u64,
    pub confusion: Confusion,
    pub accuracy: f64,
    pub ham_fpr: f64,
    pub spam_recall: f64,
    pub spam_precision: f64,
    /// Harmonic mean of spam precision and recall.
    pub f1: f64,
    pub emails_per_sec: f64,
    /// Wall time of the run, which `emails_per_sec` divides the messages by.
    #[serde(skip)]
    elapsed_seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// ROC AUC, when the run has probabilities for every message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auc: Option<f64>,
    /// Recall at fixed ham FPRs, when the run has probabilities for every message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recall_at_ham_fpr: Vec<RecallAtHamFpr>,
    pub model_version: String,
    pub threshold: f64,
    /// The model's threshold for mail from a mailing list, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_mail_threshold: Option<f64>,
    /// The effect of known-spam fingerprints (`spamctl eval --known-spam` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_spam: Option<KnownSpamEffect>,
    /// Verdicts per rule of the verdict policy, such as `model` or `bloom_near_duplicate`
    /// (`spamctl dev` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<BTreeMap<String, u64>>,
    /// Replayed messages that went to the dead-letter topic (`spamctl dev` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered: Option<u64>,
    /// Replayed messages with neither a verdict nor a dead letter (`spamctl dev` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<u64>,
    /// Whether the `summary` line ends with `auc=`; `spamctl dev` keeps a fixed field set.
    #[serde(skip)]
    auc_in_line: bool,
}

impl Summary {
    /// Builds the summary of a run from its confusion matrix, per-message latencies in
    /// milliseconds and elapsed wall time in seconds.
    pub fn new(
        confusion: Confusion,
        latencies_ms: &[f64],
        elapsed_seconds: f64,
        auc: Option<f64>,
        model_version: String,
        threshold: f64,
    ) -> Self {
        let messages = confusion.total();
        Self {
            messages,
            spam: confusion.spam(),
            ham: confusion.ham(),
            confusion,
            accuracy: confusion.accuracy(),
            ham_fpr: confusion.ham_false_positive_rate(),
            spam_recall: confusion.spam_recall(),
            spam_precision: confusion.spam_precision(),
            f1: f1(confusion.spam_precision(), confusion.spam_recall()),
            emails_per_sec: if elapsed_seconds > 0.0 {
                messages as f64 / elapsed_seconds
            } else {
                0.0
            },
            elapsed_seconds,
            p50_ms: percentile(latencies_ms, 50.0),
            p99_ms: percentile(latencies_ms, 99.0),
            auc,
            recall_at_ham_fpr: Vec::new(),
            model_version,
            threshold,
            list_mail_threshold: None,
            known_spam: None,
            decided_by: None,
            dead_lettered: None,
            missing: None,
            auc_in_line: true,
        }
    }

    /// Adds the pipeline's loss counts and leaves ROC AUC out of the `summary` line, as
    /// `spamctl dev` reports them.
    pub fn for_pipeline(
        mut self,
        dead_lettered: u64,
        missing: u64,
        decided_by: BTreeMap<String, u64>,
    ) -> Self {
        self.decided_by = Some(decided_by);
        self.dead_lettered = Some(dead_lettered);
        self.missing = Some(missing);
        self.auc_in_line = false;
        self
    }

    /// Returns the wall time of the run in seconds.
    pub fn scoring_seconds(&self) -> f64 {
        self.elapsed_seconds
    }

    /// Records the model's threshold for mail from a mailing list.
    pub fn with_list_mail_threshold(mut self, threshold: Option<f64>) -> Self {
        self.list_mail_threshold = threshold;
        self
    }

    /// Records the effect of known-spam fingerprints on this run.
    pub fn with_known_spam(mut self, effect: KnownSpamEffect) -> Self {
        self.known_spam = Some(effect);
        self
    }

    /// Adds spam recall at ham FPR 0.1% and 0.5% from (spam probability, is spam) pairs.
    pub fn with_recall_at_ham_fpr(mut self, scores: &[(f64, bool)]) -> Self {
        self.recall_at_ham_fpr = crate::evaluation::RECALL_AT_HAM_FPR
            .iter()
            .map(|&ham_fpr| RecallAtHamFpr {
                ham_fpr,
                spam_recall: spam_recall_at_ham_fpr(scores, ham_fpr),
            })
            .collect();
        self
    }

    /// Writes the human-readable report followed by the one-line `summary`, or the JSON
    /// object alone.
    pub fn write_to(&self, out: &mut impl Write, json: bool) -> std::io::Result<()> {
        if json {
            // The summary holds only numbers and strings, so it always serializes.
            writeln!(
                out,
                "{}",
                serde_json::to_string(self).expect("summary serializes")
            )?;
            return Ok(());
        }
        let c = &self.confusion;
        writeln!(out)?;
        let list_mail = self
            .list_mail_threshold
            .map(|threshold| format!(", mail from a mailing list at {threshold:.4}"))
            .unwrap_or_default();
        writeln!(
            out,
            "model {} at threshold {:.4}{list_mail}",
            self.model_version, self.threshold
        )?;
        writeln!(
            out,
            "messages: {} ({} spam, {} ham)",
            self.messages, self.spam, self.ham
        )?;
        writeln!(out)?;
        writeln!(out, "                 labelled spam  labelled ham")?;
        writeln!(
            out,
            "  actual spam    {:>13}  {:>12}",
            c.true_positives, c.false_negatives
        )?;
        writeln!(
            out,
            "  actual ham     {:>13}  {:>12}",
            c.false_positives, c.true_negatives
        )?;
        writeln!(out)?;
        writeln!(out, "accuracy        {:.4}", self.accuracy)?;
        writeln!(out, "ham FPR         {:.4}", self.ham_fpr)?;
        writeln!(out, "spam recall     {:.4}", self.spam_recall)?;
        writeln!(out, "spam precision  {:.4}", self.spam_precision)?;
        writeln!(out, "F1              {:.4}", self.f1)?;
        if let Some(auc) = self.auc {
            writeln!(out, "ROC AUC         {auc:.4}")?;
        }
        for point in &self.recall_at_ham_fpr {
            writeln!(
                out,
                "spam recall at ham FPR {:.1}%: {:.4}",
                point.ham_fpr * 100.0,
                point.spam_recall
            )?;
        }
        if let Some(known) = self.known_spam {
            writeln!(
                out,
                "known spam      fingerprints of {} TRAIN spam changed {} verdicts",
                known.spam_messages, known.verdicts_changed
            )?;
        }
        writeln!(out, "throughput      {:.1} emails/s", self.emails_per_sec)?;
        writeln!(
            out,
            "latency         p50 {:.2} ms, p99 {:.2} ms",
            self.p50_ms, self.p99_ms
        )?;
        writeln!(out, "{}", self.summary_line())?;
        Ok(())
    }

    /// Formats the last line, in a fixed form for scripts.
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "summary messages={} accuracy={:.4} ham_fpr={:.4} spam_recall={:.4} emails_per_sec={:.1} p99_ms={:.3}",
            self.messages,
            self.accuracy,
            self.ham_fpr,
            self.spam_recall,
            self.emails_per_sec,
            self.p99_ms
        );
        if let Some(auc) = self.auc.filter(|_| self.auc_in_line) {
            line.push_str(&format!(" auc={auc:.4}"));
        }
        line
    }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_has_fixed_form() {
        let mut confusion = Confusion::default();
        confusion.add(true, true);
        confusion.add(false, false);
        let summary = Summary::new(confusion, &[1.0, 2.0], 1.0, Some(1.0), "v".into(), 0.5);
        assert_eq!(
            summary.summary_line(),
            "summary messages=2 accuracy=1.0000 ham_fpr=0.0000 spam_recall=1.0000 emails_per_sec=2.0 p99_ms=2.000 auc=1.0000"
        );
    }
}

//! `spamctl eval --report DIR`: the evaluation report as Markdown with ROC and
//! precision-recall curves drawn as PNG, and other filters' rows beside spamflow's.
//!
//! Other filters' results come from a tab-separated file written by `scripts/compare-peers`.
//! Lines starting with `#` are comments, except `#version<TAB>peer<TAB>version` lines and
//! `#seconds<TAB>peer<TAB>seconds` lines, the wall time of scoring every message. Every other
//! line is `peer<TAB>message name<TAB>ham|spam<TAB>score<TAB>ham|spam`: the true label,
//! the peer's score (higher means more spam-like) and the peer's own verdict.
//! `spamctl eval --scores FILE` writes spamflow's scores in the same format, so that the
//! messages it got wrong are one `awk` away and another model's scores can join a report.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;
use spamflow_core::metrics::{
    Confusion, PrPoint, RocPoint, precision_recall_curve, roc_auc, roc_curve,
    spam_recall_at_ham_fpr,
};

/// The name of the run that `spamctl eval --known-spam` scores.
pub const KNOWN_SPAM_RUN: &str = "spamflow + known spam";

/// The ham false-positive rates at which the report gives spam recall.
pub const RECALL_AT_HAM_FPR: [f64; 2] = [0.001, 0.005];

/// One filter's scored run, spamflow's or a peer's.
#[derive(Debug, Clone)]
pub struct ScoredRun {
    pub name: String,
    pub version: String,
    /// (score, is spam): higher scores are more spam-like.
    pub scores: Vec<(f64, bool)>,
    pub confusion: Confusion,
    /// Wall time of scoring every message, when the run measured it.
    pub scoring_seconds: Option<f64>,
}

/// The figures of one row of the report's table.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    pub confusion: Confusion,
    pub roc_auc: f64,
    pub recall_at_ham_fpr: Vec<f64>,
}

impl ScoredRun {
    pub fn metrics(&self) -> RunMetrics {
        RunMetrics {
            confusion: self.confusion,
            roc_auc: roc_auc(&self.scores),
            recall_at_ham_fpr: RECALL_AT_HAM_FPR
                .iter()
                .map(|&fpr| spam_recall_at_ham_fpr(&self.scores, fpr))
                .collect(),
        }
    }
}

/// Writes one line per message in the peers format: the run's `name`, the message name, the
/// true label, the score and the verdict, from (name, score, is spam, labelled spam). `#version` names the model, and
/// `#seconds` gives `scoring_seconds`. Tabs and line breaks in a name become spaces.
///
/// # Errors
///
/// Fails naming the file when it cannot be written.
pub fn write_scores(
    path: &Path,
    run: &str,
    model_version: &str,
    scoring_seconds: f64,
    scores: &[(&str, f64, bool, bool)],
) -> anyhow::Result<()> {
    let label = |is_spam: bool| if is_spam { "spam" } else { "ham" };
    let mut text = String::from(
        "# peer<TAB>message<TAB>label<TAB>score<TAB>verdict; written by spamctl eval --scores\n",
    );
    // Writing to a String cannot fail.
    let _ = writeln!(text, "#version\t{run}\t{model_version}");
    if scoring_seconds > 0.0 {
        let _ = writeln!(text, "#seconds\t{run}\t{scoring_seconds:.6}");
    }
    for &(name, probability, is_spam, flagged) in scores {
        let name = name.replace(['\t', '\n', '\r'], " ");
        let _ = writeln!(
            text,
            "{run}\t{name}\t{}\t{probability:.6}\t{}",
            label(is_spam),
            label(flagged)
        );
    }
    std::fs::write(path, text)
        .with_context(|| format!("failed to write scores to {}", path.display()))
}

/// The shortest scoring time a peers file may give. Shorter ones come from a clock that did not
/// run, and would put an absurd figure in the messages/s column.
const MIN_SCORING_SECONDS: f64 = 1e-6;

/// Reads the seconds of the fields of a `#seconds` line.
fn parse_seconds(fields: &[&str]) -> anyhow::Result<f64> {
    let [_, _, seconds] = fields else {
        bail!("the line has {} fields instead of 3", fields.len());
    };
    let value: f64 = seconds
        .parse()
        .with_context(|| format!("{seconds:?} is not a number"))?;
    if !(value.is_finite() && value >= MIN_SCORING_SECONDS) {
        bail!("{seconds:?} is not a number of seconds of at least {MIN_SCORING_SECONDS}");
    }
    Ok(value)
}

/// Reads the peers file written by `scripts/compare-peers`, one [`ScoredRun`] per peer in
/// order of first appearance.
///
/// # Errors
///
/// Fails naming the file and line when the file cannot be read or a line is malformed.
pub fn load_peers(path: &Path) -> anyhow::Result<Vec<ScoredRun>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read peer scores {}", path.display()))?;
    let mut runs: Vec<ScoredRun> = Vec::new();
    let mut versions: Vec<(String, String)> = Vec::new();
    let mut timings: Vec<(String, f64)> = Vec::new();
    let mut scored = std::collections::HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let Some(first) = fields.first().and_then(|f| f.strip_prefix('#')) {
            if first == "version" && fields.len() == 3 {
                versions.push((fields[1].to_owned(), fields[2].to_owned()));
            }
            if first == "seconds" {
                let seconds = parse_seconds(&fields).with_context(|| {
                    format!(
                        "invalid line {} of {}: expected `#seconds<TAB>peer<TAB>seconds` with \
                         at least {MIN_SCORING_SECONDS} seconds",
                        index + 1,
                        path.display()
                    )
                })?;
                if timings.iter().any(|(peer, _)| peer == fields[1]) {
                    bail!(
                        "invalid line {} of {}: a second scoring time for {:?}",
                        index + 1,
                        path.display(),
                        fields[1]
                    );
                }
                timings.push((fields[1].to_owned(), seconds));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let invalid = || {
            format!(
                "invalid line {} of {}: expected `peer<TAB>name<TAB>ham|spam<TAB>score<TAB>ham|spam`",
                index + 1,
                path.display()
            )
        };
        let [peer, name, label, score, verdict] = fields[..] else {
            bail!(invalid());
        };
        if !scored.insert((peer, name)) {
            bail!(
                "invalid line {} of {}: a second score of {name:?} for {peer:?}; each peer \
                 scores each message once",
                index + 1,
                path.display()
            );
        }
        let is_spam = parse_label(label).with_context(invalid)?;
        let predicted_spam = parse_label(verdict).with_context(invalid)?;
        let score: f64 = score.parse().with_context(invalid)?;
        if !score.is_finite() {
            bail!("{}; the score {score} is not a finite number", invalid());
        }
        let position = match runs.iter().position(|run| run.name == peer) {
            Some(position) => position,
            None => {
                runs.push(ScoredRun {
                    name: peer.to_owned(),
                    version: String::new(),
                    scores: Vec::new(),
                    confusion: Confusion::default(),
                    scoring_seconds: None,
                });
                runs.len() - 1
            }
        };
        runs[position].scores.push((score, is_spam));
        runs[position].confusion.add(predicted_spam, is_spam);
    }
    if runs.is_empty() {
        bail!(
            "{} contains no peer scores: expected lines `peer<TAB>name<TAB>ham|spam<TAB>score<TAB>\
             ham|spam`, as `scripts/compare-peers` and `spamctl eval --scores` write them",
            path.display()
        );
    }
    for run in &mut runs {
        if let Some((_, version)) = versions.iter().find(|(peer, _)| *peer == run.name) {
            run.version = version.clone();
        }
        if let Some((_, seconds)) = timings.iter().find(|(peer, _)| *peer == run.name) {
            run.scoring_seconds = Some(*seconds);
        }
    }
    if let Some((peer, _)) = timings
        .iter()
        .find(|(peer, _)| !runs.iter().any(|run| run.name == *peer))
    {
        bail!(
            "{}: the scoring time names {peer:?}, which has no scores in the file",
            path.display()
        );
    }
    Ok(runs)
}

fn parse_label(text: &str) -> anyhow::Result<bool> {
    match text {
        "spam" => Ok(true),
        "ham" => Ok(false),
        other => bail!("label `{other}` is neither `ham` nor `spam`"),
    }
}

/// Facts about the run that the report states.
#[derive(Debug, Clone)]
pub struct ReportContext {
    pub command: String,
    pub split: String,
    pub model_version: String,
    pub threshold: f64,
    /// The model's threshold for mail from a mailing list, when it has one.
    pub list_mail_threshold: Option<f64>,
    pub machine: String,
    pub date: String,
}

/// Colours of the curves, in run order: spamflow first, then peers.
const COLOURS: [(RGBColor, &str); 8] = [
    (RGBColor(31, 119, 180), "blue"),
    (RGBColor(214, 39, 40), "red"),
    (RGBColor(44, 160, 44), "green"),
    (RGBColor(148, 103, 189), "purple"),
    (RGBColor(255, 127, 14), "orange"),
    (RGBColor(140, 86, 75), "brown"),
    (RGBColor(227, 119, 194), "pink"),
    (RGBColor(23, 190, 207), "cyan"),
];

/// Returns the name of the run at `index` for headings and the legend. When another run has the
/// same name, such as two spamflow models in one report, the version follows in parentheses,
/// and the row number too when the version is also the same.
fn display_name(runs: &[ScoredRun], index: usize) -> String {
    let run = &runs[index];
    let others = || {
        runs.iter()
            .enumerate()
            .filter(move |&(other, peer)| other != index && peer.name == run.name)
    };
    let name = run.name.replace('|', "\\|");
    if others().next().is_none() {
        return name;
    }
    let version = if run.version.is_empty() {
        "-"
    } else {
        run.version.as_str()
    };
    if others().any(|(_, peer)| peer.version == run.version) {
        format!("{name} ({version}, row {})", index + 1)
    } else {
        format!("{name} ({version})")
    }
}

/// Writes `evaluation.md`, `roc.png` and `precision-recall.png` into `dir`.
///
/// # Errors
///
/// Fails naming the file when the folder cannot be created or a file cannot be written.
pub fn write_report(dir: &Path, context: &ReportContext, runs: &[ScoredRun]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create report folder {}", dir.display()))?;
    let roc_path = dir.join("roc.png");
    let pr_path = dir.join("precision-recall.png");
    let rocs: Vec<Vec<RocPoint>> = runs.iter().map(|run| roc_curve(&run.scores)).collect();
    let prs: Vec<Vec<PrPoint>> = runs
        .iter()
        .map(|run| precision_recall_curve(&run.scores))
        .collect();

    draw_curves(
        &roc_path,
        &rocs
            .iter()
            .map(|curve| curve.iter().map(|p| (p.ham_fpr, p.spam_recall)).collect())
            .collect::<Vec<_>>(),
        ROC_VIEW,
    )
    .with_context(|| format!("failed to draw {}", roc_path.display()))?;
    draw_curves(
        &pr_path,
        &prs.iter()
            .map(|curve| {
                curve
                    .iter()
                    .map(|p| (p.spam_recall, p.spam_precision))
                    .collect()
            })
            .collect::<Vec<_>>(),
        PR_VIEW,
    )
    .with_context(|| format!("failed to draw {}", pr_path.display()))?;

    let markdown = render_markdown(context, runs);
    let path = dir.join("evaluation.md");
    std::fs::write(&path, markdown)
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// The plotted region: (x from, x to, y from, y to, grid step on x, grid step on y).
type View = (f64, f64, f64, f64, f64, f64);

/// ROC: ham false-positive rate 0 to 5% across and spam recall 80% to 100% up, because the
/// filters differ there and the full square hides every difference in its corner.
const ROC_VIEW: View = (0.0, 0.05, 0.8, 1.0, 0.01, 0.05);
/// Precision-recall: recall 80% to 100% across, precision 80% to 100% up.
const PR_VIEW: View = (0.8, 1.0, 0.8, 1.0, 0.05, 0.05);

/// Draws one line per curve, with grid lines and no text, so no font is needed.
fn draw_curves(path: &Path, curves: &[Vec<(f64, f64)>], view: View) -> anyhow::Result<()> {
    let (x_from, x_to, y_from, y_to, x_step, y_step) = view;
    let root = BitMapBackend::new(path, (640, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let area = root.margin(20, 20, 20, 20);
    let mut chart = ChartBuilder::on(&area).build_cartesian_2d(x_from..x_to, y_from..y_to)?;

    let grey = RGBColor(220, 220, 220);
    let steps = |from: f64, to: f64, step: f64| {
        let count = ((to - from) / step).round() as usize;
        (0..=count).map(move |i| from + step * i as f64)
    };
    for x in steps(x_from, x_to, x_step) {
        chart.draw_series(LineSeries::new([(x, y_from), (x, y_to)], grey))?;
    }
    for y in steps(y_from, y_to, y_step) {
        chart.draw_series(LineSeries::new([(x_from, y), (x_to, y)], grey))?;
    }
    chart.draw_series(LineSeries::new(
        [(x_from, y_to), (x_from, y_from), (x_to, y_from)],
        BLACK.stroke_width(2),
    ))?;

    for (index, curve) in curves.iter().enumerate() {
        let (colour, _) = COLOURS[index % COLOURS.len()];
        // Clamp into the view so a curve that leaves it runs along the border.
        let points = curve
            .iter()
            .map(|&(x, y)| (x.clamp(x_from, x_to), y.clamp(y_from, y_to)));
        chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

fn render_markdown(context: &ReportContext, runs: &[ScoredRun]) -> String {
    let mut md = String::new();
    // Writing into a String cannot fail, so the results of writeln! are ignored below.
    let _ = writeln!(md, "# Evaluation\n");
    let _ = writeln!(
        md,
        "Generated by `{}` on {} ({}). Split: {}. spamflow model `{}` at its shipped threshold \
         {:.6}{}.\n",
        context.command,
        context.date,
        context.machine,
        context.split,
        context.model_version,
        context.threshold,
        context
            .list_mail_threshold
            .map(|threshold| format!(", and {threshold:.6} for mail from a mailing list"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "Spam is the positive class: a false positive is ham labelled spam. Accuracy, ham FPR, \
         recall and precision are at each filter's own default verdict. ROC AUC and the \
         recall at a fixed ham FPR come from each filter's scores, so they do not depend on \
         its threshold. Messages/s divides the messages by the wall time of scoring them on \
         one core, where the run measured it. For spamflow that is parsing and scoring in one \
         thread of `spamctl eval`.\n"
    );

    if runs.iter().any(|run| run.name == KNOWN_SPAM_RUN) {
        let _ = writeln!(
            md,
            "The row `{KNOWN_SPAM_RUN}` is the verdict of the whole mesh, from `spamctl eval \
             --known-spam`: the model and the Bloom filter of known spam, \
             holding the fingerprints of every TRAIN spam, less those a TRAIN ham shares. An \
             exact match of the normalized body makes a message spam, and a near-duplicate \
             match halves the threshold. Its score is the model's probability, 1 for an exact \
             match and twice the probability, at most 1, for a near-duplicate one.\n"
        );
    }
    if runs.iter().any(|run| !run.name.starts_with("spamflow")) {
        let _ = writeln!(
            md,
            "The other filters' rows come from `scripts/compare-peers`, which trains each filter \
             on the same TRAIN split with network tests off and scores the same messages: \
             bogofilter registers every TRAIN message and counts its `unsure` verdict as ham. \
             SpamAssassin runs its local rules with Bayes trained by `sa-learn`, and its score \
             is the rule score. CRM114 uses an OSB unique microgroom classifier trained on \
             every TRAIN message, and its score is the spam class's pR. The scoring time is \
             bogofilter's bulk mode, SpamAssassin's checks in one Perl process after its rules \
             are compiled, and one `crm` process per message for CRM114. Rows marked \
             `(no delivery fields)` come from the same filter trained and scored on copies of \
             the messages without the mbox `From ` line and the fields added on delivery \
             (`Received`, `Return-Path`, `Delivered-To`, `Delivery-Date`, `X-Keywords`, \
             `X-Status`, `X-Spam-*`). spamflow never reads those, because in this corpus they \
             name the relays and tools that collected ham and spam, which differ. \
             SpamAssassin's rules read the relay path by design, so its row without them \
             understates it on mail whose path is the reader's own.\n"
        );
    }
    let _ = writeln!(
        md,
        "| filter | version | messages | accuracy | ham FPR | false positives | spam recall | \
         spam precision | ROC AUC | recall at 0.1% FPR | recall at 0.5% FPR | messages/s |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for run in runs {
        let metrics = run.metrics();
        let c = &metrics.confusion;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {:.4} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
            run.name.replace('|', "\\|"),
            if run.version.is_empty() {
                "-"
            } else {
                run.version.as_str()
            },
            c.total(),
            c.accuracy(),
            c.ham_false_positive_rate(),
            c.false_positives,
            c.spam_recall(),
            c.spam_precision(),
            metrics.roc_auc,
            metrics.recall_at_ham_fpr[0],
            metrics.recall_at_ham_fpr[1],
            run.scoring_seconds.map_or_else(
                || "-".to_owned(),
                |seconds| format!("{:.0}", c.total() as f64 / seconds)
            ),
        );
    }

    for (index, run) in runs.iter().enumerate() {
        let c = &run.confusion;
        let _ = writeln!(md, "\n## Confusion matrix: {}\n", display_name(runs, index));
        let _ = writeln!(md, "| | labelled spam | labelled ham |");
        let _ = writeln!(md, "|---|---|---|");
        let _ = writeln!(
            md,
            "| actual spam | {} | {} |",
            c.true_positives, c.false_negatives
        );
        let _ = writeln!(
            md,
            "| actual ham | {} | {} |",
            c.false_positives, c.true_negatives
        );
    }

    let legend: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(index, _)| {
            let colour = COLOURS[index % COLOURS.len()].1;
            format!("{colour} {}", display_name(runs, index))
        })
        .collect();
    let _ = writeln!(md, "\n## Curves\n");
    let _ = writeln!(
        md,
        "The images carry no text, so that drawing them needs no font. Colours: {}. Grey grid \
         lines are drawn every 1% of ham FPR and every 5% otherwise.\n",
        legend.join(", ")
    );
    let _ = writeln!(
        md,
        "ROC curve, ham false-positive rate from 0 to 5% across and spam recall from 80% to \
         100% up:\n\n![ROC curve](roc.png)\n"
    );
    let _ = writeln!(
        md,
        "Precision-recall curve, spam recall from 80% to 100% across and spam precision from \
         80% to 100% up:\n\n![Precision-recall curve](precision-recall.png)"
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamflow_testkit::ScratchDir;

    /// Writes `text` to a file named `name` in a scratch folder, removed when dropped.
    fn write_temp(name: &str, text: &str) -> (ScratchDir, std::path::PathBuf) {
        let dir = ScratchDir::new("evaluation");
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn peers_file_parses_runs_and_versions() {
        let (_dir, path) = write_temp(
            "peers-ok.tsv",
            "# scores\n#version\tbogofilter\t1.2.5\n\
             bogofilter\ta.txt\tspam\t0.99\tspam\n\
             bogofilter\tb.txt\tham\t0.01\tham\n\
             crm114\ta.txt\tspam\t-3.5\tham\n",
        );
        let runs = load_peers(&path).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].name, "bogofilter");
        assert_eq!(runs[0].version, "1.2.5");
        assert_eq!(runs[0].scores, [(0.99, true), (0.01, false)]);
        assert_eq!(runs[0].confusion.true_positives, 1);
        assert_eq!(runs[1].confusion.false_negatives, 1);
        assert_eq!(runs[1].version, "");
    }

    #[test]
    fn peers_file_rejects_no_scores_and_repeats() {
        let (_dir, path) = write_temp("peers-empty.tsv", "# scores\n#version\tcrm114\t1\n");
        let error = format!("{:#}", load_peers(&path).unwrap_err());
        assert!(error.contains("contains no peer scores"), "{error}");
        let (_dir, path) = write_temp(
            "peers-repeat.tsv",
            "crm114\ta.txt\tspam\t1\tspam\ncrm114\ta.txt\tspam\t1\tspam\n",
        );
        let error = format!("{:#}", load_peers(&path).unwrap_err());
        assert!(error.contains("invalid line 2"), "{error}");
        assert!(error.contains("a second score of \"a.txt\""), "{error}");
    }

    #[test]
    fn peers_file_rejects_bad_label() {
        let (_dir, path) = write_temp("peers-bad.tsv", "p\ta.txt\tmaybe\t0.5\tspam\n");
        let error = format!("{:#}", load_peers(&path).unwrap_err());
        assert!(error.contains("line 1"), "{error}");
        assert!(error.contains("maybe"), "{error}");
    }

    #[test]
    fn peers_file_reads_scoring_time() {
        let text = "#seconds\tp\t2.5\np\ta.txt\tspam\t0.9\tspam\nq\tb.txt\tham\t0.1\tham\n";
        let (_dir, path) = write_temp("peers-seconds.tsv", text);
        let runs = load_peers(&path).unwrap();
        assert_eq!(runs[0].scoring_seconds, Some(2.5));
        assert_eq!(runs[1].scoring_seconds, None);

        let row = "p\ta.txt\tspam\t0.9\tspam\n";
        for (bad, expected) in [
            ("#seconds\tp\t-1\n", "\"-1\""),
            ("#seconds\tp\t1e-300\n", "at least"),
            ("#seconds\tp\n", "2 fields"),
            ("#seconds\tp\t1\n#seconds\tp\t2\n", "a second scoring time"),
            ("#seconds\tq\t1\n", "has no scores"),
        ] {
            let (_dir, path) = write_temp("peers-bad-seconds.tsv", &format!("{bad}{row}"));
            let error = format!("{:#}", load_peers(&path).unwrap_err());
            assert!(error.contains(expected), "{bad:?}: {error}");
        }
    }

    #[test]
    fn peers_file_rejects_non_finite_score() {
        for score in ["NaN", "inf", "1e400"] {
            let line = format!("p\ta.txt\tspam\t{score}\tspam\n");
            let (_dir, path) = write_temp("peers-nan.tsv", &line);
            let error = format!("{:#}", load_peers(&path).unwrap_err());
            assert!(error.contains("not a finite number"), "{error}");
        }
    }

    #[test]
    fn runs_sharing_a_name_are_told_apart() {
        let run = |name: &str, version: &str| ScoredRun {
            name: name.into(),
            version: version.into(),
            confusion: Confusion::default(),
            scores: Vec::new(),
            scoring_seconds: None,
        };
        let runs = [
            run("spamflow", "lr2-a"),
            run("spamflow", "lr2-b"),
            run("spamflow", "lr2-b"),
            run("bogo|filter", "1.2.5"),
        ];
        assert_eq!(display_name(&runs, 0), "spamflow (lr2-a)");
        assert_eq!(display_name(&runs, 1), "spamflow (lr2-b, row 2)");
        assert_eq!(display_name(&runs, 2), "spamflow (lr2-b, row 3)");
        assert_eq!(display_name(&runs, 3), "bogo\\|filter");
    }

    #[test]
    fn report_writes_markdown_and_images() {
        let dir = ScratchDir::new("report");
        let scores = vec![(0.9, true), (0.8, true), (0.3, false), (0.1, false)];
        let run = ScoredRun {
            name: "spamflow".into(),
            version: "lr2-test".into(),
            confusion: Confusion::from_scores(&scores, 0.5),
            scores,
            scoring_seconds: Some(0.5),
        };
        let context = ReportContext {
            command: "spamctl eval --report DIR".into(),
            split: "test".into(),
            model_version: "lr2-test".into(),
            threshold: 0.5,
            list_mail_threshold: None,
            machine: "test machine".into(),
            date: "2026-01-01".into(),
        };
        write_report(&dir, &context, &[run]).unwrap();
        let markdown = std::fs::read_to_string(dir.join("evaluation.md")).unwrap();
        assert!(
            markdown.contains("| spamflow | lr2-test | 4 | 1.0000 | 0.0000 | 0 | 1.0000"),
            "{markdown}"
        );
        assert!(markdown.contains("| 1.0000 | 1.0000 | 8 |"), "{markdown}");
        for image in ["roc.png", "precision-recall.png"] {
            let bytes = std::fs::read(dir.join(image)).unwrap();
            assert_eq!(&bytes[1..4], b"PNG", "{image}");
        }
    }
}

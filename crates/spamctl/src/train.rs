//! `spamctl train` and `spamctl eval`: fit a model on labelled messages, and score one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use spamflow_core::features::{CharacterGrams, FeatureSettings};
use spamflow_core::metrics::{Confusion, roc_auc};
use spamflow_core::model::{Example, TrainOptions, train_with_progress};
use spamflow_core::{Email, Label, Limits, Model, Score, verdict};
use spamflow_runtime::cli::{UsageError, parse_threshold, whole_number_from, whole_number_in};

use crate::corpus::{self, CorpusMessage, LabelledPaths, SplitFilter};
use crate::evaluation::{self, ReportContext, ScoredRun};
use crate::known_spam::KnownSpam;
use crate::report::{KnownSpamEffect, Summary};

/// `spamctl train` flags.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub corpus: LabelledPaths,
    /// Path of the model file (JSON) to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Part of the TRAIN/TEST split to train on.
    #[arg(long, value_enum, default_value = "train")]
    pub split: SplitFilter,
    /// L2 regularization strengths tried by cross-validation (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = TrainOptions::default().alphas,
        value_parser = parse_alpha
    )]
    pub alpha: Vec<f64>,
    /// Cross-validation folds, from 2 to 100, and at most the messages of the smaller class,
    /// because each fold needs messages of both classes.
    #[arg(
        long,
        default_value_t = TrainOptions::default().folds,
        value_parser = parse_folds
    )]
    pub folds: u32,
    /// Largest share of training ham (scored out of fold) allowed at or above the tuned
    /// threshold, from 0 to 0.5.
    #[arg(
        long,
        default_value_t = TrainOptions::default().max_ham_fpr,
        value_parser = parse_max_ham_fpr
    )]
    pub max_ham_fpr: f64,
    /// A fixed spam-probability threshold instead of the tuned one, above 0 and below 1.
    #[arg(long, value_parser = parse_threshold)]
    pub threshold: Option<f64>,
    /// Largest vocabulary, in tokens, 1 or more.
    #[arg(
        long,
        default_value_t = TrainOptions::default().features.max_vocabulary,
        value_parser = whole_number_from(1u32)
    )]
    pub max_vocabulary: u32,
    /// Add a block of this many character 4-grams of the words to the vocabulary; 0 leaves it
    /// out. Off by default (docs/model.md).
    #[arg(long, default_value_t = 0, value_parser = whole_number_from(0u32))]
    pub max_character_grams: u32,
    /// Also tune a threshold of its own for mail with a `List-Id` field. It shares the false
    /// positives that --max-ham-fpr allows with other mail (docs/model.md). `false` keeps one
    /// threshold.
    #[arg(
        long,
        value_name = "true|false",
        default_value_t = TrainOptions::default().list_mail_threshold,
        action = clap::ArgAction::Set,
        conflicts_with = "threshold"
    )]
    pub list_mail_threshold: bool,
    /// Solver iterations, at least 1.
    #[arg(
        long,
        default_value_t = TrainOptions::default().max_iterations,
        value_parser = whole_number_from(1u64)
    )]
    pub max_iterations: u64,
}

/// Maximum cross-validation folds. Each fold fits one model per penalty, so training time
/// grows with the folds.
// NOTE: 100 is a practical cap, not a measured one.
const MAX_FOLDS: u32 = 100;

/// Parses `--folds` for clap.
fn parse_folds(text: &str) -> Result<u32, String> {
    whole_number_in(2, MAX_FOLDS)(text).map_err(|error| {
        format!(
            "{error}, and at most the messages of the smaller class, because each fold needs \
             messages of both classes"
        )
    })
}

/// Parses one `--alpha` penalty for clap: a positive number that stays positive and finite as
/// the f32 the solver takes.
fn parse_alpha(text: &str) -> Result<f64, String> {
    const EXAMPLE: &str = "pass a positive number such as 0.001";
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number; {EXAMPLE}"))?;
    let smallest = f64::from(f32::MIN_POSITIVE);
    let largest = f64::from(f32::MAX);
    if (smallest..=largest).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text:?} is outside [{smallest:e}, {largest:e}], the positive range of f32, the \
             type the solver takes; {EXAMPLE}"
        ))
    }
}

/// Parses `--max-ham-fpr` for clap: a share from 0 to 0.5.
fn parse_max_ham_fpr(text: &str) -> Result<f64, String> {
    const EXAMPLE: &str = "pass a share such as 0.001";
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number; {EXAMPLE}"))?;
    if (0.0..=0.5).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{text:?} is outside [0, 0.5]: a threshold that flags more than half the ham as \
             spam is no filter; {EXAMPLE}"
        ))
    }
}

/// `spamctl eval` flags.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub corpus: LabelledPaths,
    /// Model file; the shipped default model when absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Part of the TRAIN/TEST split to score.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitFilter,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Also write evaluation.md, roc.png and precision-recall.png into this folder.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Other filters' scores on the same messages, written by scripts/compare-peers or by
    /// `--scores`, to add as rows of the report; repeatable.
    #[arg(long, value_name = "FILE", requires = "report")]
    pub peers: Vec<PathBuf>,
    /// Judge with the model and known-spam fingerprints, as the mesh does with its Bloom
    /// filter: those of the TRAIN spam under the same paths, less those of the TRAIN ham. The
    /// run is then named `spamflow + known spam`. Needs `--split test`.
    #[arg(long)]
    pub known_spam: bool,
    /// Also write one tab-separated line per message to this file: the run's name, the
    /// message's name, its true label, its score (the spam probability, or with --known-spam
    /// the decision score) and the verdict, in the format that `--peers` reads.
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
}

pub fn run_train(args: &TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions {
        alphas: args.alpha.clone(),
        folds: args.folds,
        max_ham_fpr: args.max_ham_fpr,
        threshold: args.threshold,
        list_mail_threshold: args.list_mail_threshold,
        max_iterations: args.max_iterations,
        features: FeatureSettings {
            max_vocabulary: args.max_vocabulary,
            character_grams: (args.max_character_grams > 0).then(|| CharacterGrams {
                max_vocabulary: args.max_character_grams,
                ..CharacterGrams::default()
            }),
            ..TrainOptions::default().features
        },
    };
    let messages = args.corpus.load(args.split)?;
    corpus::require_both_classes(&messages)?;

    let progress = progress_bar(messages.len() as u64, "tokenizing");
    let mut examples = Vec::with_capacity(messages.len());
    let mut skipped = 0;
    for message in &messages {
        match Email::parse(&message.raw, Limits::default()) {
            Ok(email) => examples.push(Example::new(&email, message.label, &message.raw)),
            Err(error) => {
                skipped += 1;
                tracing::warn!(message = %message.name, %error, "Skipping a message that does not parse");
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    check_folds(&examples, options.folds)?;

    // One bar step per logistic-regression fit: folds × penalties, then the final fit.
    let fits = u64::from(options.folds) * options.alphas.len() as u64 + 1;
    let bar = progress_bar(fits, "fitting");
    bar.enable_steady_tick(std::time::Duration::from_millis(500));
    let started = Instant::now();
    let model = train_with_progress(
        &examples,
        &options,
        spamflow_runtime::timefmt::now_rfc3339(),
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();

    std::fs::write(&args.out, model.to_json())
        .with_context(|| format!("failed to write the model to {}", args.out.display()))?;
    let info = model.training();
    outln!(
        "trained {} on {} messages ({} spam, {} ham, {} skipped) in {:.1}s",
        model.version(),
        info.messages,
        info.spam,
        info.ham,
        skipped,
        started.elapsed().as_secs_f64()
    )?;
    let grams = match model.vocabulary_grams() {
        0 => String::new(),
        count => format!(", {count} of them character grams"),
    };
    outln!(
        "vocabulary {} entries{grams}; training accuracy {:.4}, training ROC AUC {:.4}",
        model.vocabulary_size(),
        info.training_accuracy,
        info.training_auc
    )?;
    let cv = &info.cross_validation;
    for result in &cv.results {
        outln!(
            "cross-validation alpha {}: log loss {:.4}, ROC AUC {:.5}{}",
            result.alpha,
            result.log_loss,
            result.roc_auc,
            if result.alpha == cv.chosen_alpha {
                " (chosen)"
            } else {
                ""
            }
        )?;
    }
    outln!(
        "threshold {:.6}{}: out-of-fold ham FPR {:.4}, spam recall {:.4} ({} folds)",
        model.threshold(),
        model
            .list_mail_threshold()
            .map(|threshold| format!(" ({threshold:.6} for mail from a mailing list)"))
            .unwrap_or_default(),
        cv.ham_fpr,
        cv.spam_recall,
        cv.folds
    )?;
    outln!("wrote {}", args.out.display())?;
    Ok(())
}

pub fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    if args.known_spam {
        KnownSpam::check_split(args.split)?;
    }
    let model = load_model(args.model.as_deref())?;
    let messages = args.corpus.load(args.split)?;
    corpus::require_both_classes(&messages)?;
    let known = if args.known_spam {
        Some(KnownSpam::from_train_split(
            &args.corpus.spam,
            &args.corpus.ham,
        )?)
    } else {
        None
    };
    // Read before `--scores` writes, which may name the same file.
    let mut peer_runs = Vec::new();
    for peers in &args.peers {
        for run in evaluation::load_peers(peers)? {
            if run.scores.len() != messages.len() {
                anyhow::bail!(
                    "{}: run {:?} scored {} messages, but this evaluation has {}; write the \
                     peers file from the same --split of the same corpus",
                    peers.display(),
                    run.name,
                    run.scores.len(),
                    messages.len()
                );
            }
            peer_runs.push(run);
        }
    }
    let (summary, scores, flagged) = evaluate(&model, &messages, known.as_ref(), !args.json);
    let run_name = if known.is_some() {
        evaluation::KNOWN_SPAM_RUN
    } else {
        "spamflow"
    };
    if let Some(path) = &args.scores {
        let named: Vec<(&str, f64, bool, bool)> = messages
            .iter()
            .zip(&scores)
            .zip(&flagged)
            .map(|((message, &(score, is_spam)), &flagged)| {
                (message.name.as_str(), score, is_spam, flagged)
            })
            .collect();
        evaluation::write_scores(
            path,
            run_name,
            model.version(),
            summary.scoring_seconds(),
            &named,
        )?;
    }
    if let Some(dir) = &args.report {
        let mut runs = vec![ScoredRun {
            name: run_name.to_owned(),
            scoring_seconds: Some(summary.scoring_seconds()),
            version: model.version().to_owned(),
            confusion: summary.confusion,
            scores: scores.clone(),
        }];
        runs.extend(peer_runs);
        let context = ReportContext {
            command: command_line(),
            split: format!("{:?}", args.split).to_lowercase(),
            model_version: model.version().to_owned(),
            threshold: model.threshold(),
            list_mail_threshold: model.list_mail_threshold(),
            machine: describe_machine(),
            date: spamflow_runtime::timefmt::now_rfc3339(),
        };
        evaluation::write_report(dir, &context, &runs)?;
    }
    summary.write_to(&mut std::io::stdout().lock(), args.json)?;
    Ok(())
}

/// Checks that every fold can contain messages of both classes, which needs at least as many
/// messages of each class as folds.
///
/// # Errors
///
/// Returns a [`UsageError`], so the command exits 64, when a class has fewer messages.
fn check_folds(examples: &[Example], folds: u32) -> anyhow::Result<()> {
    let spam = examples.iter().filter(|e| e.label == Label::Spam).count();
    let ham = examples.len() - spam;
    let smallest = spam.min(ham);
    if smallest >= folds as usize {
        return Ok(());
    }
    let advice = if smallest >= 2 {
        format!("pass --folds {smallest} or fewer")
    } else {
        "add messages, since cross-validation needs at least 2 of each class".to_owned()
    };
    Err(UsageError(format!(
        "--folds {folds} is above the {smallest} messages of the smaller class ({spam} spam, \
         {ham} ham), and each fold needs messages of both classes; {advice}"
    ))
    .into())
}

/// Returns the command line for the report, with the program's folder left out and characters
/// that would break a Markdown table cell replaced.
fn command_line() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(program) = args.first_mut()
        && let Some(name) = Path::new(program.as_str()).file_name()
    {
        *program = name.to_string_lossy().into_owned();
    }
    args.iter()
        .map(|arg| arg.replace(['|', '`'], "_"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Describes the CPU model and core count, for reports of measured numbers.
fn describe_machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

/// Scores every message in process and summarizes; also returns the (score, is spam) pairs
/// and whether each message was labelled spam. The score is the spam probability, or with
/// `known` spam fingerprints the [`verdict::decision_score`] of the probability and the
/// matches. Each label is decided at the message's own threshold ([`Model::threshold_for`]).
/// A message that does not parse counts as labelled ham, as the pipeline would not flag it
/// either, with score 0.
pub fn evaluate(
    model: &Model,
    messages: &[CorpusMessage],
    known: Option<&KnownSpam>,
    show_progress: bool,
) -> (Summary, Vec<(f64, bool)>, Vec<bool>) {
    let progress = if show_progress {
        progress_bar(messages.len() as u64, "scoring")
    } else {
        ProgressBar::hidden()
    };
    let mut decided_by_fingerprints = 0;
    let mut scores = Vec::with_capacity(messages.len());
    let mut flagged = Vec::with_capacity(messages.len());
    let mut confusion = Confusion::default();
    let mut latencies_ms = Vec::with_capacity(messages.len());
    let started = Instant::now();
    for message in messages {
        let begin = Instant::now();
        let (probability, is_flagged) = match Email::parse(&message.raw, Limits::default()) {
            Ok(email) => {
                let Score {
                    probability,
                    threshold,
                    ..
                } = model.score(&email);
                match known {
                    Some(known) => {
                        let score = verdict::decision_score(probability, &known.matches(&email));
                        if (score >= threshold) != (probability >= threshold) {
                            decided_by_fingerprints += 1;
                        }
                        (score, score >= threshold)
                    }
                    None => (probability, probability >= threshold),
                }
            }
            Err(error) => {
                tracing::warn!(message = %message.name, %error, "Message does not parse; counted as ham");
                (0.0, false)
            }
        };
        latencies_ms.push(begin.elapsed().as_secs_f64() * 1000.0);
        let is_spam = message.label == Label::Spam;
        scores.push((probability, is_spam));
        flagged.push(is_flagged);
        confusion.add(is_flagged, is_spam);
        progress.inc(1);
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let summary = Summary::new(
        confusion,
        &latencies_ms,
        elapsed,
        Some(roc_auc(&scores)),
        model.version().to_owned(),
        model.threshold(),
    )
    .with_recall_at_ham_fpr(&scores)
    .with_list_mail_threshold(model.list_mail_threshold());
    let summary = match known {
        Some(known) => summary.with_known_spam(KnownSpamEffect {
            spam_messages: known.spam_messages as u64,
            verdicts_changed: decided_by_fingerprints,
        }),
        None => summary,
    };
    (summary, scores, flagged)
}

/// Loads a model file, or the shipped default model.
pub fn load_model(path: Option<&Path>) -> anyhow::Result<Model> {
    match path {
        Some(path) => spam_detector::load_model_file(path, "--model"),
        None => spam_detector::default_model().context("failed to load the shipped default model"),
    }
}

pub fn progress_bar(length: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length).with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

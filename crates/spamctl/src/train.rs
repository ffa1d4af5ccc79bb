//! `spamctl train` and `spamctl eval`: fit a model on labelled messages, and score one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use spamflow_core::metrics::{Confusion, roc_auc};
use spamflow_core::model::{Example, TrainOptions, train};
use spamflow_core::{Email, Label, Limits, Model};

use crate::corpus::{self, CorpusMessage, SplitFilter};
use crate::report::Summary;

/// `spamctl train` flags.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Folder (searched recursively) or mbox file of spam; repeatable.
    #[arg(long, required = true, num_args = 1..)]
    pub spam: Vec<PathBuf>,
    /// Folder (searched recursively) or mbox file of ham; repeatable.
    #[arg(long, required = true, num_args = 1..)]
    pub ham: Vec<PathBuf>,
    /// Where to write the model file (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Which part of the TRAIN/TEST split to train on.
    #[arg(long, value_enum, default_value = "train")]
    pub split: SplitFilter,
    /// L2 regularization strength.
    #[arg(long, default_value_t = TrainOptions::default().alpha)]
    pub alpha: f64,
    /// Probability at or above which a message is labelled spam.
    #[arg(long, default_value_t = TrainOptions::default().threshold)]
    pub threshold: f64,
    /// Largest vocabulary, in tokens.
    #[arg(long, default_value_t = TrainOptions::default().features.max_vocabulary)]
    pub max_vocabulary: u32,
    /// Solver iterations.
    #[arg(long, default_value_t = TrainOptions::default().max_iterations)]
    pub max_iterations: u64,
}

/// `spamctl eval` flags.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder (searched recursively) or mbox file of spam; repeatable.
    #[arg(long, required = true, num_args = 1..)]
    pub spam: Vec<PathBuf>,
    /// Folder (searched recursively) or mbox file of ham; repeatable.
    #[arg(long, required = true, num_args = 1..)]
    pub ham: Vec<PathBuf>,
    /// Model file; the shipped default model when absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Which part of the TRAIN/TEST split to score.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitFilter,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

pub fn run_train(args: &TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions {
        alpha: args.alpha,
        threshold: args.threshold,
        max_iterations: args.max_iterations,
        features: spamflow_core::features::FeatureSettings {
            max_vocabulary: args.max_vocabulary,
            ..TrainOptions::default().features
        },
    };
    let messages = corpus::load(&args.spam, &args.ham, args.split)?;
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

    let spinner = ProgressBar::new_spinner().with_message(format!(
        "fitting logistic regression on {} messages",
        examples.len()
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let started = Instant::now();
    let model = train(&examples, &options, crate::timefmt::now_rfc3339())?;
    spinner.finish_and_clear();

    std::fs::write(&args.out, model.to_json())
        .with_context(|| format!("failed to write the model to {}", args.out.display()))?;
    let info = model.training();
    println!(
        "trained {} on {} messages ({} spam, {} ham, {} skipped) in {:.1}s",
        model.version(),
        info.messages,
        info.spam,
        info.ham,
        skipped,
        started.elapsed().as_secs_f64()
    );
    println!(
        "vocabulary {} tokens; training accuracy {:.4}, training ROC AUC {:.4}",
        model.vocabulary_size(),
        info.training_accuracy,
        info.training_auc
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

pub fn run_eval(args: &EvalArgs) -> anyhow::Result<()> {
    let model = load_model(args.model.as_deref())?;
    let messages = corpus::load(&args.spam, &args.ham, args.split)?;
    corpus::require_both_classes(&messages)?;
    let summary = evaluate(&model, &messages, !args.json);
    summary.print(args.json);
    Ok(())
}

/// Scores every message in process and summarizes. A message that does not parse counts as
/// labelled ham, as the pipeline would not flag it either, with probability 0.
pub fn evaluate(model: &Model, messages: &[CorpusMessage], show_progress: bool) -> Summary {
    let progress = if show_progress {
        progress_bar(messages.len() as u64, "scoring")
    } else {
        ProgressBar::hidden()
    };
    let mut scores = Vec::with_capacity(messages.len());
    let mut latencies_ms = Vec::with_capacity(messages.len());
    let started = Instant::now();
    for message in messages {
        let begin = Instant::now();
        let probability = match Email::parse(&message.raw, Limits::default()) {
            Ok(email) => model.score(&email).probability,
            Err(error) => {
                tracing::warn!(message = %message.name, %error, "Message does not parse; counted as ham");
                0.0
            }
        };
        latencies_ms.push(begin.elapsed().as_secs_f64() * 1000.0);
        scores.push((probability, message.label == Label::Spam));
        progress.inc(1);
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    Summary::new(
        Confusion::from_scores(&scores, model.threshold()),
        &latencies_ms,
        elapsed,
        Some(roc_auc(&scores)),
        model.version().to_owned(),
        model.threshold(),
    )
}

/// Loads a model file, or the shipped default model.
pub fn load_model(path: Option<&Path>) -> anyhow::Result<Model> {
    match path {
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read model file {}", path.display()))?;
            Model::from_json(&json)
                .with_context(|| format!("failed to load model file {}", path.display()))
        }
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

//! `spamctl classify`: score one message in process and explain the score.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use spamflow_core::{Email, Limits};

/// `spamctl classify` flags.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// The message: a raw RFC 5322 file, or plain text with --text.
    pub file: PathBuf,
    /// Treat the file as plain text rather than an RFC 5322 message.
    #[arg(long)]
    pub text: bool,
    /// Model file; the shipped default model when absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

pub fn run(args: &ClassifyArgs) -> anyhow::Result<()> {
    let model = crate::train::load_model(args.model.as_deref())?;
    let raw = std::fs::read(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let email = if args.text {
        Email::from_plain_text(&String::from_utf8_lossy(&raw), Limits::default())
    } else {
        Email::parse(&raw, Limits::default())
    }
    .with_context(|| {
        let hint = if args.text {
            ""
        } else {
            "; pass --text to classify plain text"
        };
        format!("cannot classify {}{hint}", args.file.display())
    })?;
    let score = model.score(&email);
    let explanation = model.explain(&email, EXPLAINED_FEATURES);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} (spam probability {:.4}, threshold {:.4}, model {})",
        args.file.display(),
        score.label,
        score.probability,
        model.threshold(),
        model.version()
    )?;
    writeln!(
        out,
        "features (weight x value, added to the logit before calibration; intercept {:+.4}):",
        explanation.intercept
    )?;
    writeln!(out, "  pushed toward spam:")?;
    write_features(&mut out, &explanation.toward_spam)?;
    writeln!(out, "  pushed toward ham:")?;
    write_features(&mut out, &explanation.toward_ham)?;
    Ok(())
}

/// How many features `spamctl classify` lists in each direction.
const EXPLAINED_FEATURES: usize = 10;

fn write_features(out: &mut impl Write, features: &[(String, f64)]) -> std::io::Result<()> {
    if features.is_empty() {
        writeln!(out, "    (none)")?;
    }
    for (feature, contribution) in features {
        writeln!(out, "    {contribution:+.4}  {feature}")?;
    }
    Ok(())
}

//! `spamctl classify`: score one message in process and explain the score.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use spamflow_core::{Email, EmailError, Limits};

/// `spamctl classify` flags.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// The message: a raw RFC 5322 file, or plain text with --text; `-` reads standard input.
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
    let raw = read_message(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let email = if args.text {
        plain_text_email(&raw)
    } else {
        Email::parse(&raw, Limits::default())
    }
    .map_err(|error| {
        // Only a header that does not parse suggests plain text.
        let hint = match error {
            EmailError::MalformedHeader { .. }
            | EmailError::NoHeaders
            | EmailError::BinaryHeader { .. }
                if !args.text =>
            {
                "; pass --text to classify plain text"
            }
            _ => "",
        };
        anyhow::Error::new(error).context(format!("cannot classify {}{hint}", args.file.display()))
    })?;
    // Tokenized once for both: the tokens of a large message are its largest cost.
    let tokens = spamflow_core::tokens::tokenize(&email);
    let score = model.score_tokens(&tokens);
    let explanation = model.explain_tokens(&tokens, EXPLAINED_FEATURES);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} (spam probability {:.4}, threshold {:.4}, model {})",
        args.file.display(),
        score.label,
        score.probability,
        score.threshold,
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

/// Reads the file, or standard input for `-`, up to one byte past the size limit, so that an
/// endless stream or a device such as `/dev/zero` gets an error instead of filling memory.
fn read_message(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let limit = Limits::default().max_message_bytes;
    let mut raw = Vec::new();
    let source = if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut raw)?;
        "standard input".to_owned()
    } else {
        std::fs::File::open(path)?
            .take(limit as u64 + 1)
            .read_to_end(&mut raw)?;
        "the file".to_owned()
    };
    if raw.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{source} contains more than {limit} bytes, the size limit of a message; the services \
                 reject such a message too"
            ),
        ));
    }
    Ok(raw)
}

/// Builds an email from plain text. The size limit applies to the bytes read: bytes that are
/// not UTF-8 become replacement characters of 3 bytes each, which must not push a text under
/// the limit over it.
fn plain_text_email(raw: &[u8]) -> Result<Email, EmailError> {
    let limits = Limits::default();
    if raw.len() > limits.max_message_bytes {
        return Err(EmailError::TooLarge {
            size: raw.len(),
            limit: limits.max_message_bytes,
        });
    }
    let text = String::from_utf8_lossy(raw);
    let max_message_bytes = limits.max_message_bytes.max(text.len());
    Email::from_plain_text(&text, Limits { max_message_bytes })
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

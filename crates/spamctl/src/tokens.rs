//! `spamctl tokens`: print the tokens each message of a corpus becomes.
//!
//! The output feeds feature experiments outside Rust, such as `scripts/model-experiments`,
//! and shows what a message turns into when a feature does not behave as expected.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};
use spamflow_core::tokens::tokenize;
use spamflow_core::{Email, Limits};

use crate::corpus::{self, SplitFilter};

/// `spamctl tokens` flags. One class alone is enough.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("paths").args(["spam", "ham"]).required(true).multiple(true)))]
pub struct TokensArgs {
    /// Folder (searched recursively) or mbox file of spam; repeatable.
    #[arg(long, num_args = 1.., value_parser = corpus::existing_path())]
    pub spam: Vec<PathBuf>,
    /// Folder (searched recursively) or mbox file of ham; repeatable.
    #[arg(long, num_args = 1.., value_parser = corpus::existing_path())]
    pub ham: Vec<PathBuf>,
    /// Part of the TRAIN/TEST split to print.
    #[arg(long, value_enum, default_value = "train")]
    pub split: SplitFilter,
}

/// Writes one line per message that parses: the label (`spam` or `ham`), the message name,
/// the sha256 of the raw message, and its tokens separated by spaces, each tab separated.
/// White space inside a token is written as `_`. Messages that do not parse are left out, as
/// training leaves them out, with a warning on standard error.
///
/// # Errors
///
/// Fails as [`corpus::load`] does, when no message parses, or when standard output fails.
pub fn run(args: &TokensArgs) -> anyhow::Result<()> {
    let messages = corpus::load(&args.spam, &args.ham, args.split)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut written = 0_usize;
    for message in &messages {
        let email = match Email::parse(&message.raw, Limits::default()) {
            Ok(email) => email,
            Err(error) => {
                errln!("skipping {}: {error}", message.name);
                continue;
            }
        };
        written += 1;
        let tokens: Vec<String> = tokenize(&email)
            .into_iter()
            .map(|token| token.replace(char::is_whitespace, "_"))
            .collect();
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            message.label.as_str(),
            // A tab or line break in a file name would break the line's four fields.
            message.name.replace(['\t', '\n', '\r'], "_"),
            hex::encode(Sha256::digest(&message.raw)),
            tokens.join(" ")
        )
        .context("failed to write the tokens to standard output")?;
    }
    out.flush()
        .context("failed to write the tokens to standard output")?;
    if written == 0 {
        anyhow::bail!(
            "none of the {} messages parses as an email (see the warnings above); nothing to \
             print",
            messages.len()
        );
    }
    if args.split != SplitFilter::All {
        // Messages of the other split are left out without a warning of their own.
        errln!(
            "printed {written} messages of the {} split; `--split all` prints every message",
            args.split.flag_value()
        );
    }
    Ok(())
}

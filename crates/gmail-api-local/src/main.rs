//! The `gmail-api-local` binary: serves a mailbox folder as a local Gmail API.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use gmail_api_local::mailbox::DEFAULT_HISTORY_RETENTION;
use gmail_api_local::{Mailboxes, PushEndpoint, ServerOptions};
use spamflow_runtime::{cli, shutdown};

/// A local stand-in for the Gmail REST API v1 that serves folders of .eml files.
#[derive(Debug, Parser)]
#[command(name = "gmail-api-local", version)]
struct Config {
    /// Address to serve HTTP on.
    #[arg(long, env = "SPAMFLOW_LISTEN_ADDR", default_value = "127.0.0.1:8085")]
    listen_addr: SocketAddr,

    /// Folder of .eml files: DIR/*.eml are INBOX, DIR/<LABEL>/*.eml carry that label, and
    /// DIR/<address>/ is another mailbox with the same layout.
    #[arg(long, env = "SPAMFLOW_MAILBOX_DIR")]
    mailbox_dir: PathBuf,

    /// Address of the mailbox that owns the top-level files of --mailbox-dir.
    #[arg(
        long,
        env = "SPAMFLOW_MAILBOX_EMAIL",
        default_value = "me@example.com",
        value_parser = parse_email
    )]
    email: String,

    /// http:// URL that receives a Pub/Sub-style push after each change while a watch is
    /// active.
    #[arg(long, env = "SPAMFLOW_PUSH_ENDPOINT")]
    push_endpoint: Option<PushEndpoint>,

    /// Value of the token query parameter added to every push.
    #[arg(long, env = "SPAMFLOW_PUSH_TOKEN", hide_env_values = true)]
    push_token: Option<String>,

    /// History records kept per mailbox. history.list returns 404 for older starts.
    #[arg(
        long,
        env = "SPAMFLOW_HISTORY_RETENTION",
        default_value_t = DEFAULT_HISTORY_RETENTION as u64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    history_retention: u64,
}

fn main() {
    let config: Config = cli::parse_or_exit();
    std::process::exit(cli::run_main("gmail-api-local", run(config)));
}

async fn run(config: Config) -> anyhow::Result<()> {
    let retention = usize::try_from(config.history_retention).unwrap_or(usize::MAX);
    let mailboxes =
        Mailboxes::load(&config.mailbox_dir, &config.email, retention).with_context(|| {
            format!(
                "failed to load the mailbox folder {} (SPAMFLOW_MAILBOX_DIR)",
                config.mailbox_dir.display()
            )
        })?;
    for email in mailboxes.emails() {
        let mailbox = mailboxes.get(Some(email))?;
        tracing::info!(
            messages = mailbox.messages().count(),
            history_id = mailbox.history_id(),
            "Loaded a mailbox"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {} (SPAMFLOW_LISTEN_ADDR)",
                config.listen_addr
            )
        })?;
    let options = ServerOptions {
        push_endpoint: config.push_endpoint,
        push_token: config.push_token,
    };
    tracing::info!(address = %config.listen_addr, "Local Gmail API listening");
    gmail_api_local::serve(listener, mailboxes, options, shutdown::signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("Local Gmail API stopped");
    Ok(())
}

/// Accepts an address with one `@` between a non-empty local part and domain.
fn parse_email(value: &str) -> Result<String, String> {
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(value.to_owned())
        }
        _ => Err("expected an email address such as me@example.com".to_owned()),
    }
}

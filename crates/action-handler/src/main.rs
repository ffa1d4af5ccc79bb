//! The `action-handler` binary.

#![forbid(unsafe_code)]

use action_handler::gmail::GmailActions;
use action_handler::{ActionHandler, Config};
use anyhow::Context;
use spamflow_gmail::GmailPool;
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::Store;
use spamflow_runtime::{cli, http, shutdown};

fn main() {
    let config: Config = cli::parse_or_exit();
    // Check the rules that span several flags. Clap has already checked each flag on its own.
    if let Err(error) = action_handler::config::check_flags(&config.policy, &config.gmail) {
        cli::exit_usage(error);
    }
    std::process::exit(cli::run_main("action-handler", async move {
        let store = Store::connect_at_start(&config.redis).await?;
        if !store.is_durable() {
            tracing::warn!(
                "SPAMFLOW_REDIS_URL is unset: recorded verdicts live only in this process"
            );
        }
        let gmail = if config.policy.gmail_actions {
            let pool = GmailPool::connect(&config.gmail)
                .await
                .context("failed to set up the Gmail clients (--gmail-*)")?;
            let clients = pool
                .clients()
                .iter()
                .map(|client| (client.mailbox().to_owned(), client.clone()));
            let actions = GmailActions::new(clients, config.policy.dry_run);
            tracing::info!(
                mailboxes = pool.clients().len(),
                dry_run = config.policy.dry_run,
                "Gmail actions are on"
            );
            Some(actions)
        } else {
            tracing::info!("Gmail actions are off; verdicts are only recorded and logged");
            None
        };
        let handler = ActionHandler::new(&config, store, gmail)?;
        let (stop, stopping) = Stopping::new();
        let mut http_stopping = stopping.clone();
        let http_server = http::spawn(config.http_addr, handler.readiness(), None, async move {
            http_stopping.wait().await;
        })
        .await?;
        tokio::spawn(async move {
            shutdown::signal().await;
            let _ = stop.send(true);
        });
        let result = action_handler::run(&config, handler, stopping).await;
        http_server.abort();
        result
    }));
}

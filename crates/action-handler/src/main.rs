//! The `action-handler` binary.

#![forbid(unsafe_code)]

use action_handler::{ActionHandler, Config};
use anyhow::Context;
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::Store;
use spamflow_runtime::{cli, http, shutdown};

fn main() {
    let config: Config = cli::parse_or_exit();
    // Rules that span several flags; clap has already checked each flag on its own.
    let policy = match config.policy.policy() {
        Ok(policy) => policy,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(cli::EXIT_USAGE);
        }
    };
    std::process::exit(cli::run_main("action-handler", async move {
        let store = Store::connect(&config.redis)
            .await
            .context("failed to connect to Redis (SPAMFLOW_REDIS_URL)")?;
        if !store.is_durable() {
            tracing::warn!(
                "SPAMFLOW_REDIS_URL is unset: recorded verdicts live only in this process"
            );
        }
        let handler = ActionHandler::new(&config, store)?;
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

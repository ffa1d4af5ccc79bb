//! The `trainer` binary.

#![forbid(unsafe_code)]

use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::{cli, http, shutdown};
use trainer::{Config, Trainer};

fn main() {
    let config: Config = cli::parse_or_exit();
    if let Err(message) = config.validate() {
        cli::exit_usage(message);
    }
    std::process::exit(cli::run_main("trainer", async move {
        let trainer = Trainer::new(&config)?;
        let (stop, stopping) = Stopping::new();
        let mut http_stopping = stopping.clone();
        let http_server = http::spawn(config.http_addr, trainer.readiness(), None, async move {
            http_stopping.wait().await;
        })
        .await?;
        tokio::spawn(async move {
            shutdown::signal().await;
            let _ = stop.send(true);
        });
        let result = trainer::run(&config, trainer, stopping).await;
        http_server.abort();
        result
    }));
}

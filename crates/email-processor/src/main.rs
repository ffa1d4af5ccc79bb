//! The `email-processor` binary.

#![forbid(unsafe_code)]

use email_processor::{Config, Processor};
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::{cli, http, shutdown};

fn main() {
    let config: Config = cli::parse_or_exit();
    std::process::exit(cli::run_main("email-processor", async move {
        let processor = Processor::new(&config)?;
        let (stop, stopping) = Stopping::new();
        let mut http_stopping = stopping.clone();
        let http_server = http::spawn(config.http_addr, processor.readiness(), None, async move {
            http_stopping.wait().await;
        })
        .await?;
        tokio::spawn(async move {
            shutdown::signal().await;
            let _ = stop.send(true);
        });
        let result = email_processor::run(&config, processor, stopping).await;
        http_server.abort();
        result
    }));
}

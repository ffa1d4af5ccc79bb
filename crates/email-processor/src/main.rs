//! The `email-processor` binary.

#![forbid(unsafe_code)]

use email_processor::{Config, Processor};
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::{cli, shutdown, telemetry};

fn main() {
    let config: Config = cli::parse_or_exit();
    telemetry::init("email-processor");
    std::process::exit(cli::run_main(async move {
        let processor = Processor::new(&config)?;
        let (stop, stopping) = Stopping::new();
        tokio::spawn(async move {
            shutdown::signal().await;
            let _ = stop.send(true);
        });
        email_processor::run(&config, processor, stopping).await
    }));
}

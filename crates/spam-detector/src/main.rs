//! The `spam-detector` binary.

#![forbid(unsafe_code)]

use spam_detector::{Config, Detector};
use spamflow_core::Limits;
use spamflow_runtime::{cli, grpc, shutdown, telemetry};

fn main() {
    let config: Config = cli::parse_or_exit();
    telemetry::init("spam-detector");
    std::process::exit(cli::run_main(async move {
        let model = config.load_model()?;
        tracing::info!(model_version = model.version(), "Loaded model");
        let detector = Detector::new(
            model,
            Limits {
                max_message_bytes: config.max_message_bytes,
            },
            config.max_batch,
        );
        let listener = grpc::bind(config.listen_addr).await?;
        spam_detector::run(detector, &config.server, listener, shutdown::signal()).await
    }));
}

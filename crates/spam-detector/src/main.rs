//! The `spam-detector` binary.

#![forbid(unsafe_code)]

use spam_detector::{CHECK_MODEL, Config, Detector, updates};
use spamflow_core::Limits;
use spamflow_runtime::http::{self, Readiness};
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::{cli, grpc, shutdown};
use tokio::sync::watch;

fn main() {
    let (config, matches) = cli::parse_with_matches_or_exit::<Config>();
    let brokers_configured = !matches!(
        matches.value_source("kafka_brokers"),
        None | Some(clap::parser::ValueSource::DefaultValue)
    );
    std::process::exit(cli::run_main("spam-detector", async move {
        let readiness = Readiness::new(&[CHECK_MODEL]);
        let model = config.load_model()?;
        tracing::info!(model_version = model.version(), "Loaded model");
        readiness.set(CHECK_MODEL, true);
        let detector = Detector::new(
            model,
            Limits {
                max_message_bytes: config.max_message_bytes,
            },
            config.max_batch,
        );
        let listener = grpc::bind(config.listen_addr).await?;
        let (stop_updates, updates_stopping) = Stopping::new();
        let updates = config
            .model_updates
            .enabled(brokers_configured)
            .then(|| spawn_updates(&config, detector.clone(), updates_stopping));
        if updates.is_none() {
            tracing::info!("Model updates are off; serving the loaded model only");
        }
        let (stop, mut stopped) = watch::channel(false);
        let http_server = http::spawn(config.http_addr, readiness, None, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await?;
        let result =
            spam_detector::run(detector, &config.server, listener, shutdown::signal()).await;
        stop.send_replace(true);
        stop_updates.send_replace(true);
        if let Some(updates) = updates {
            let _ = updates.await;
        }
        let _ = http_server.await;
        result
    }));
}

/// Follows the models topic in a background task until `stopping` is raised.
fn spawn_updates(
    config: &Config,
    detector: Detector,
    stopping: Stopping,
) -> tokio::task::JoinHandle<()> {
    let (kafka, name) = (config.kafka.clone(), config.model_name.clone());
    tokio::spawn(async move {
        // A detector without model updates still serves its current model.
        if let Err(error) = updates::follow(detector, &kafka, &name, stopping).await {
            tracing::error!(
                error = spamflow_runtime::cli::error_chain(&error),
                "Stopped following model announcements; the current model stays"
            );
        }
    })
}

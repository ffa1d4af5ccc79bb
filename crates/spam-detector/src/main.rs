//! The `spam-detector` binary.

#![forbid(unsafe_code)]

use spam_detector::{CHECK_MODEL, Config, Detector};
use spamflow_core::Limits;
use spamflow_runtime::http::{self, Readiness};
use spamflow_runtime::{cli, grpc, shutdown};
use tokio::sync::watch;

fn main() {
    let config: Config = cli::parse_or_exit();
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
        let (stop, mut stopped) = watch::channel(false);
        let http_server = http::spawn(config.http_addr, readiness, None, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await?;
        let result =
            spam_detector::run(detector, &config.server, listener, shutdown::signal()).await;
        stop.send_replace(true);
        let _ = http_server.await;
        result
    }));
}

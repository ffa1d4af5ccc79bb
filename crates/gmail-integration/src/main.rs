//! The `gmail-integration` binary: the service, or `auth` for the one-time sign-in.

#![forbid(unsafe_code)]

use anyhow::Context;
use gmail_integration::publish::Publisher;
use gmail_integration::{Cli, Command, GmailIntegration, push};
use rdkafka::producer::FutureProducer;
use spamflow_gmail::GmailPool;
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::Store;
use spamflow_runtime::{cli, http, shutdown};

fn main() {
    let cli: Cli = cli::parse_or_exit();
    if let Some(Command::Auth(auth)) = cli.command {
        std::process::exit(cli::run_main("gmail-integration", async move {
            let mailbox = spamflow_gmail::sign_in(&auth.gmail, auth.redirect_port).await?;
            cli::print_to_stderr(&format!(
                "Signed in; the token cache {} is ready for {mailbox}",
                auth.gmail
                    .token_file
                    .as_deref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default()
            ));
            Ok(())
        }));
    }

    let config = cli.config;
    let checked = config
        .validate()
        .and_then(|()| config.gmail.check().map_err(|error| error.to_string()));
    if let Err(message) = checked {
        cli::exit_usage(message);
    }
    std::process::exit(cli::run_main("gmail-integration", async move {
        let store = Store::connect_at_start(&config.redis).await?;
        if !store.is_durable() {
            tracing::warn!(
                "SPAMFLOW_REDIS_URL is unset: checkpoints live only in this process, so a \
                 restart runs a full sync again"
            );
        }
        let producer: FutureProducer = config
            .kafka
            .producer_config()?
            .create()
            .context("failed to create the Kafka producer")?;
        let publisher = Publisher::new(producer, config.kafka.topics());
        let pool = GmailPool::connect(&config.gmail)
            .await
            .context("failed to set up the Gmail clients")?;

        let service = GmailIntegration::new(&config, &pool, store, publisher);
        let mut app = http::router(service.readiness(), None);
        if let Some(token) = config.push_token() {
            app = app.merge(push::router(service.push_state(token)));
        }
        let (stop, stopping) = Stopping::new();
        let mut http_stopping = stopping.clone();
        let listener = spamflow_runtime::grpc::bind(config.http_addr).await?;
        let http_server = tokio::spawn(async move {
            let shutdown = async move { http_stopping.wait().await };
            if let Err(error) = http::serve_router(listener, app, shutdown).await {
                tracing::error!(%error, "HTTP server failed");
            }
        });
        tokio::spawn(async move {
            shutdown::signal().await;
            let _ = stop.send(true);
        });
        let result = service.run(stopping).await;
        http_server.abort();
        result
    }));
}

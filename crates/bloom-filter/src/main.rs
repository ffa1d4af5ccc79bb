//! The `bloom-filter` binary.

#![forbid(unsafe_code)]

use anyhow::Context;
use bloom_filter::{Config, Filter};
use spamflow_runtime::store::Store;
use spamflow_runtime::{cli, grpc, shutdown, telemetry};

fn main() {
    let config: Config = cli::parse_or_exit();
    telemetry::init("bloom-filter");
    std::process::exit(cli::run_main(async move {
        let store = Store::connect(&config.redis)
            .await
            .context("failed to connect to Redis (SPAMFLOW_REDIS_URL)")?;
        if !store.is_durable() {
            tracing::warn!(
                "SPAMFLOW_REDIS_URL is unset: inserted fingerprints live only in this process"
            );
        }
        let filter = Filter::open(store, config.expected_items, config.false_positive_rate).await?;
        let listener = grpc::bind(config.listen_addr).await?;
        bloom_filter::run(filter, &config.server, listener, shutdown::signal()).await
    }));
}

//! The `bloom-filter` binary.

#![forbid(unsafe_code)]

use bloom_filter::{CHECK_REDIS, Config, Filter};
use spamflow_runtime::http::{self, Readiness};
use spamflow_runtime::store::Store;
use spamflow_runtime::{cli, grpc, shutdown};
use tokio::sync::watch;

fn main() {
    let config: Config = cli::parse_or_exit();
    std::process::exit(cli::run_main("bloom-filter", async move {
        let store = Store::connect_at_start(&config.redis).await?;
        if !store.is_durable() {
            tracing::warn!(
                "SPAMFLOW_REDIS_URL is unset: inserted fingerprints live only in this process"
            );
        }
        let filter = Filter::open(store, config.expected_items, config.false_positive_rate).await?;
        let listener = grpc::bind(config.listen_addr).await?;
        let readiness = Readiness::new(&[CHECK_REDIS]);
        let refresh_filter = filter.clone();
        let refresh: http::Refresh = std::sync::Arc::new(move || refresh_filter.update_metrics());
        let (stop, mut stopped) = watch::channel(false);
        let http_server = http::spawn(
            config.http_addr,
            readiness.clone(),
            Some(refresh),
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )
        .await?;
        let result = bloom_filter::run_with_readiness(
            filter,
            &config.server,
            listener,
            readiness,
            shutdown::signal(),
        )
        .await;
        stop.send_replace(true);
        let _ = http_server.await;
        result
    }));
}

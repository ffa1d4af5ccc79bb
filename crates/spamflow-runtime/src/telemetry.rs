//! Logging setup: `tracing` to stderr, human-readable by default or JSON on request.
//!
//! `RUST_LOG` picks levels (default `info` for spamflow crates, `warn` for dependencies).
//! `SPAMFLOW_LOG_FORMAT=json` switches to one JSON object per line.

use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "warn,spamflow=info,spamctl=info,spam_detector=info,\
    bloom_filter=info,email_processor=info,action_handler=info,spamflow_runtime=info";

/// Installs the global subscriber. Calling it twice is harmless: the second call does nothing.
pub fn init(service_name: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("SPAMFLOW_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if json {
        builder.json().try_init().is_ok()
    } else {
        builder.compact().try_init().is_ok()
    };
    if installed {
        tracing::debug!(service = service_name, "Logging initialized");
    }
}

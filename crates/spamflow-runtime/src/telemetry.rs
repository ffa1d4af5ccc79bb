//! Logging and tracing setup: `tracing` to stderr, human-readable by default or JSON on
//! request, and spans exported to an OpenTelemetry collector over OTLP gRPC when configured.
//!
//! `RUST_LOG` picks log levels (default `info` for spamflow crates, `warn` for dependencies).
//! `SPAMFLOW_LOG_FORMAT=json` switches to one JSON object per line, and `text`, the default,
//! keeps one compact line per event.
//!
//! Spans are exported only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, or `OTEL_TRACES_EXPORTER=otlp`, so local runs
//! and `spamctl dev` never try to reach a collector. The OpenTelemetry SDK reads the other
//! standard variables itself: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` and the `OTEL_BSP_*` batch settings.
//! Spans go through a bounded batch queue on a background thread, so a slow or unreachable
//! collector drops spans but never blocks or fails mail processing.
//!
//! W3C trace context travels between services in Kafka headers and gRPC metadata; the
//! [`propagation`](crate::propagation) module holds the adapters.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

const DEFAULT_FILTER: &str = "warn,spamflow=info,spamctl=info,spam_detector=info,\
    bloom_filter=info,email_processor=info,action_handler=info,spamflow_runtime=info,\
    gmail_api_local=info,spamflow_gmail=info,gmail_integration=info,trainer=info";

/// Applied over any `RUST_LOG`: yup-oauth2 logs access tokens and authorization codes at
/// DEBUG (version 12), so its records below WARN never reach the log.
const SECRET_SAFE_DIRECTIVE: &str = "yup_oauth2=warn";

/// Crates whose spans are exported. Dependencies (tonic, h2, rdkafka) stay out of traces.
const TRACED_CRATES: [&str; 10] = [
    "spamflow_runtime",
    "spamflow_gmail",
    "gmail_integration",
    "spamctl",
    "spam_detector",
    "bloom_filter",
    "email_processor",
    "action_handler",
    "gmail_api_local",
    "trainer",
];

/// Maximum wait at exit for buffered spans to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether and how spans are exported, as the `OTEL_*` variables decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// No exporter is configured.
    Off,
    /// OTLP over gRPC to the endpoint the SDK reads from the environment.
    Otlp,
    /// The configuration requests an exporter this build lacks and the text names the variable.
    Unsupported(String),
}

/// Decides the span export from `OTEL_*` variables looked up through `var`.
pub fn export_from_env(var: impl Fn(&str) -> Option<String>) -> Export {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
        return Export::Off;
    }
    let requested = match set("OTEL_TRACES_EXPORTER").map(|value| value.trim().to_ascii_lowercase())
    {
        Some(exporter) if exporter == "none" => return Export::Off,
        Some(exporter) if exporter == "otlp" => true,
        Some(exporter) => {
            return Export::Unsupported(format!(
                "OTEL_TRACES_EXPORTER={exporter} is not supported; use otlp or none"
            ));
        }
        None => {
            set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
                || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        }
    };
    if !requested {
        return Export::Off;
    }
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "grpc".to_owned());
    if protocol.trim() != "grpc" {
        return Export::Unsupported(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported; this build exports \
             over OTLP gRPC only, so set it to grpc and point the endpoint at port 4317"
        ));
    }
    Export::Otlp
}

/// `OTEL_TRACES_SAMPLER` values that opentelemetry_sdk 0.33 implements.
const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];
/// `OTEL_TRACES_SAMPLER` values that the OpenTelemetry specification lists but
/// opentelemetry_sdk 0.33 does not implement. It would sample with parentbased_always_on.
const UNIMPLEMENTED_SAMPLERS: [&str; 3] = ["parentbased_jaeger_remote", "jaeger_remote", "xray"];

/// Checks the logging and tracing variables that would otherwise fall back to a default in
/// silence: `SPAMFLOW_LOG_FORMAT`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`. Each
/// is read through `var`, and an empty value counts as unset.
///
/// # Errors
///
/// Returns a message naming the variable, its value and the allowed values.
pub fn check_environment(var: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    let set = |name: &str| var(name).filter(|value| !value.is_empty());
    if let Some(format) = set("SPAMFLOW_LOG_FORMAT")
        && format != "text"
        && format != "json"
    {
        return Err(format!(
            "invalid SPAMFLOW_LOG_FORMAT={format:?}; use text (the default) or json"
        ));
    }
    let Some(sampler) = set("OTEL_TRACES_SAMPLER") else {
        return Ok(());
    };
    if UNIMPLEMENTED_SAMPLERS.contains(&sampler.as_str()) {
        return Err(format!(
            "OTEL_TRACES_SAMPLER={sampler} is not implemented by this build's OpenTelemetry \
             SDK; use one of {}",
            SAMPLERS.join(", ")
        ));
    }
    if !SAMPLERS.contains(&sampler.as_str()) {
        return Err(format!(
            "invalid OTEL_TRACES_SAMPLER={sampler:?}; use one of {}",
            SAMPLERS.join(", ")
        ));
    }
    if sampler.ends_with("traceidratio")
        && let Some(argument) = set("OTEL_TRACES_SAMPLER_ARG")
        && !argument
            .trim()
            .parse::<f64>()
            .is_ok_and(|ratio| (0.0..=1.0).contains(&ratio))
    {
        return Err(format!(
            "invalid OTEL_TRACES_SAMPLER_ARG={argument:?} for {sampler}; use a sampling \
             ratio from 0 to 1, such as 0.1"
        ));
    }
    Ok(())
}

/// The installed telemetry. Call [`Telemetry::shutdown`] before exit to flush spans.
#[must_use = "call shutdown() before exit so buffered spans are exported"]
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Returns whether spans are exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports buffered spans and stops the exporter, waiting at most a few seconds so an
    /// unreachable collector cannot hold up exit.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            tracing::warn!(%error, "Failed to flush spans at exit");
        }
    }
}

/// Installs the global subscriber and, when the `OTEL_*` variables ask for it, the OTLP span
/// exporter. Calling it twice is harmless: the second call installs nothing.
///
/// The OTLP gRPC exporter needs a Tokio runtime, so call this inside one (as
/// [`crate::cli::run_main`] does). Outside a runtime only logging is set up.
pub fn init(service_name: &str) -> Telemetry {
    let export = export_from_env(|name| std::env::var(name).ok());
    let in_runtime = tokio::runtime::Handle::try_current().is_ok();
    let (provider, export_problem) = match &export {
        Export::Otlp if in_runtime => match build_provider(service_name) {
            Ok(provider) => (Some(provider), None),
            Err(error) => (
                None,
                Some(format!("failed to build the OTLP exporter: {error}")),
            ),
        },
        Export::Otlp => (None, None),
        Export::Off => (None, None),
        Export::Unsupported(reason) => (None, Some(reason.clone())),
    };

    // The propagator is global even without an exporter, so services in one process (as in
    // `spamctl dev`) and processes without a collector still pass incoming context on.
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    // One global filter decides what both layers see, because per-layer filters (an
    // EnvFilter on the log output next to a target filter on the exporter) lost the replay's
    // spans with tracing-subscriber 0.3. Spans therefore reach the exporter only when
    // RUST_LOG enables them. The default enables every spamflow crate at INFO, the level of
    // the per-hop spans.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let filter = match SECRET_SAFE_DIRECTIVE.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let json = std::env::var("SPAMFLOW_LOG_FORMAT").is_ok_and(|format| format == "json");
    let fmt_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        // Colors only on a terminal, so log files and CI output stay plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let otel_layer = provider.as_ref().map(|provider| {
        let traced = Targets::new().with_targets(
            TRACED_CRATES
                .iter()
                .map(|target| (*target, LevelFilter::TRACE)),
        );
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service_name.to_owned()))
            .with_filter(traced)
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    if !installed {
        // Another subscriber owns the process (a second call, or a test harness); spans would
        // not reach this provider, so stop it at once.
        if let Some(provider) = provider {
            let _ = provider.shutdown_with_timeout(Duration::ZERO);
        }
        return Telemetry::default();
    }

    if let Some(problem) = export_problem {
        tracing::warn!(problem, "Span export is off");
    }
    if provider.is_some() {
        tracing::info!(service = service_name, "Exporting spans over OTLP gRPC");
    } else {
        tracing::debug!(service = service_name, "Logging initialized");
    }
    Telemetry { provider }
}

fn build_provider(
    service_name: &str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    // The SDK reads the endpoint, timeout and headers from OTEL_EXPORTER_OTLP_* itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let mut resource = Resource::builder();
    let named_by_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|name| !name.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.contains("service.name="));
    if !named_by_env {
        resource = resource.with_service_name(service_name.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn export(pairs: &[(&str, &str)]) -> Export {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        export_from_env(|name| env.get(name).cloned())
    }

    /// Lists every crate under crates/ that has a binary, named as Rust names it in log targets.
    fn service_crates() -> Vec<String> {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut names: Vec<String> = std::fs::read_dir(crates)
            .expect("the crates folder")
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join("src/main.rs").is_file())
            .map(|entry| entry.file_name().to_string_lossy().replace('-', "_"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_service_logs_and_traces() {
        let services = service_crates();
        assert!(services.contains(&"trainer".to_owned()), "{services:?}");
        for service in &services {
            assert!(
                DEFAULT_FILTER.contains(&format!("{service}=info")),
                "{service} is missing from the default log filter"
            );
            assert!(
                TRACED_CRATES.contains(&service.as_str()),
                "{service} is missing from the traced crates"
            );
        }
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), String> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        check_environment(|name| vars.get(name).cloned())
    }

    #[test]
    fn environment_check_accepts_known_values() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[("SPAMFLOW_LOG_FORMAT", "json")]), Ok(()));
        assert_eq!(check(&[("SPAMFLOW_LOG_FORMAT", "text")]), Ok(()));
        assert_eq!(check(&[("SPAMFLOW_LOG_FORMAT", "")]), Ok(()));
        for sampler in SAMPLERS {
            assert_eq!(
                check(&[("OTEL_TRACES_SAMPLER", sampler)]),
                Ok(()),
                "{sampler}"
            );
        }
        let ratio = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ];
        assert_eq!(check(&ratio), Ok(()));
    }

    #[test]
    fn environment_check_rejects_unknown_values() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[("SPAMFLOW_LOG_FORMAT", "xml")],
                "SPAMFLOW_LOG_FORMAT=\"xml\"; use text",
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "bogus")],
                "OTEL_TRACES_SAMPLER=\"bogus\"; use one of",
            ),
            (
                &[("OTEL_TRACES_SAMPLER", "ALWAYS_ON")],
                "use one of always_on",
            ),
            (&[("OTEL_TRACES_SAMPLER", "xray")], "not implemented"),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ],
                "OTEL_TRACES_SAMPLER_ARG=\"2\"",
            ),
        ];
        for (pairs, expected) in cases {
            let error = check(pairs).unwrap_err();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn export_is_off_without_endpoint() {
        assert_eq!(export(&[]), Export::Off);
        assert_eq!(export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Export::Off);
    }

    #[test]
    fn export_follows_endpoint_or_exporter() {
        assert_eq!(
            export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4317")]),
            Export::Otlp
        );
        assert_eq!(
            export(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]),
            Export::Otlp
        );
        assert_eq!(export(&[("OTEL_TRACES_EXPORTER", "otlp")]), Export::Otlp);
    }

    #[test]
    fn export_off_switches_win() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317");
        assert_eq!(
            export(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            Export::Off
        );
        assert_eq!(
            export(&[endpoint, ("OTEL_SDK_DISABLED", "true")]),
            Export::Off
        );
    }

    #[test]
    fn export_rejects_http_protocol() {
        let result = export(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        let Export::Unsupported(reason) = result else {
            panic!("expected Unsupported, got {result:?}");
        };
        assert!(reason.contains("http/protobuf"), "{reason}");
    }
}

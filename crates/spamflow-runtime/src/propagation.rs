//! W3C trace context (`traceparent`, `tracestate`) across process boundaries: Kafka record
//! headers on every produce and consume, gRPC metadata on every client call, and a tower
//! layer that continues the caller's trace on every gRPC server.
//!
//! Without an installed OpenTelemetry layer (no collector configured) spans carry no
//! OpenTelemetry context, so nothing is injected and extraction is a no-op.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics;

/// Returns `headers` with the trace context of the current span added.
pub fn inject_kafka(headers: OwnedHeaders) -> OwnedHeaders {
    let mut carrier = KafkaInjector(Vec::new());
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    carrier.0.iter().fold(headers, |headers, (key, value)| {
        headers.insert(Header {
            key: key.as_str(),
            value: Some(value.as_bytes()),
        })
    })
}

/// Makes `span` a child of the trace context in Kafka record `headers`, if any.
pub fn continue_from_kafka<H: Headers>(span: &tracing::Span, headers: Option<&H>) {
    let Some(headers) = headers else {
        return;
    };
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&KafkaExtractor(headers))
    });
    set_parent(span, context);
}

/// Sets the remote parent, ignoring the case where no OpenTelemetry layer is installed.
fn set_parent(span: &tracing::Span, context: Context) {
    // The only error is a missing OpenTelemetry layer, which means tracing export is off.
    let _ = span.set_parent(context);
}

struct KafkaInjector(Vec<(String, String)>);

impl Injector for KafkaInjector {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

struct KafkaExtractor<'a, H>(&'a H);

impl<H: Headers> Extractor for KafkaExtractor<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|header| header.key.eq_ignore_ascii_case(key))
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// A tonic client interceptor that puts the current span's trace context into the request
/// metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInterceptor;

impl tonic::service::Interceptor for TraceInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        });
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes());
        let value = tonic::metadata::MetadataValue::try_from(value.as_str());
        if let (Ok(key), Ok(value)) = (key, value) {
            self.0.insert(key, value);
        }
    }
}

struct HttpExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HttpExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// A tower layer for gRPC servers: each request gets a server span that continues the
/// caller's trace, named `<package.Service>/<Method>` with `rpc.*` and `grpc.status`
/// attributes, and its latency is recorded in `spamflow_grpc_server_request_duration_seconds`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner }
    }
}

/// The service [`GrpcTraceLayer`] wraps around a gRPC server.
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The path of a gRPC request is `/<package.Service>/<Method>`.
        let path = request.uri().path().trim_start_matches('/').to_owned();
        let (service, method) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let span = tracing::info_span!(
            "grpc_request",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            grpc.status = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HttpExtractor(request.headers()))
        });
        set_parent(&span, parent);

        // Take the service that poll_ready prepared and leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        let record_span = span.clone();
        Box::pin(
            async move {
                let result = inner.call(request).await;
                // Errors come back "trailers-only", with grpc-status in the headers. A response
                // without that header carries its status in the trailers, which is OK unless
                // the body fails later.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .unwrap_or(0),
                    // A transport-level failure: report it as UNKNOWN.
                    Err(_) => 2,
                };
                let code_name = format!("{:?}", tonic::Code::from_i32(code));
                record_span.record("grpc.status", code_name.as_str());
                metrics::global().observe_grpc_request(&path, &code_name, started.elapsed());
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_extractor_finds_header_case_insensitively() {
        let headers = OwnedHeaders::new().insert(Header {
            key: "TraceParent",
            value: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        });
        let extractor = KafkaExtractor(&headers);
        assert_eq!(
            extractor.get("traceparent"),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(extractor.keys(), vec!["TraceParent"]);
        assert_eq!(extractor.get("tracestate"), None);
    }
}

//! gRPC serving and client helpers.
//!
//! Every server gets grpc.health.v1, server reflection in both the v1 and the v1alpha protocol
//! (grpcurl 1.8 speaks only v1alpha), a deadline, a layer that continues the caller's trace
//! and records latency, and one that gives tonic's own errors spamflow's status codes
//! ([`crate::grpc_status`]). Every client gets a connect timeout and sends the current trace
//! context.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};

use crate::grpc_status::GrpcStatusLayer;
use crate::propagation::{GrpcTraceLayer, TraceInterceptor};

/// The router every spamflow gRPC server starts from.
pub type Router =
    tonic::transport::server::Router<Stack<GrpcStatusLayer, Stack<GrpcTraceLayer, Identity>>>;

/// A client channel that sends the current trace context with every call.
pub type TracedChannel = InterceptedService<Channel, TraceInterceptor>;

/// Errors of starting a gRPC server or client.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("failed to build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(
        "invalid gRPC endpoint `{url}`: {reason}; expected a URL such as http://127.0.0.1:50051"
    )]
    InvalidEndpoint { url: String, reason: String },
}

/// Server settings shared by the gRPC services.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Deadline for one request, in milliseconds, when the client sets none or a longer one.
    #[arg(
        long,
        env = "SPAMFLOW_GRPC_TIMEOUT_MS",
        default_value_t = 5_000,
        value_parser = crate::cli::whole_number_from(1u64)
    )]
    pub grpc_timeout_ms: u64,
}

/// Builds a router with health and reflection already added, and returns the health reporter
/// so the caller can mark its service serving once it is ready.
///
/// # Errors
///
/// Returns [`GrpcError::Reflection`] if the embedded descriptor sets are invalid.
pub fn standard_router(args: &ServerArgs) -> Result<(HealthReporter, Router), GrpcError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(spamflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(spamflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // The deadline is applied inside the trace layer, so that the span and the latency metric
    // record DEADLINE_EXCEEDED; a client's shorter `grpc-timeout` still applies outside it.
    let router = Server::builder()
        .layer(GrpcTraceLayer)
        .layer(GrpcStatusLayer::new(Duration::from_millis(
            args.grpc_timeout_ms,
        )))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok((reporter, router))
}

/// Serves `router` on an already bound listener until `shutdown` completes, then lets
/// in-flight requests finish.
///
/// # Errors
///
/// Returns [`GrpcError::Serve`] when the transport fails.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GrpcError> {
    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, "gRPC server listening");
    // Without TCP_NODELAY a small response waits for the client's delayed ACK, which adds
    // about 40 ms to every unary call on Linux.
    let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |accepted| {
        accepted.and_then(|stream| stream.set_nodelay(true).map(|()| stream))
    });
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    tracing::info!(address = ?address, "gRPC server stopped");
    Ok(())
}

/// Binds a listener, naming the address in the error.
///
/// # Errors
///
/// Returns the I/O error with the address when the bind fails.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to bind {address}; is another process using the port?"))
}

/// Creates a lazily connecting channel to `url` with a connect timeout, which sends the
/// current trace context with every call. Connecting lazily lets a client start before its
/// server; calls fail with `UNAVAILABLE` until the server is up.
///
/// # Errors
///
/// Returns [`GrpcError::InvalidEndpoint`] for a malformed URL.
pub fn traced_channel(url: &str, connect_timeout: Duration) -> Result<TracedChannel, GrpcError> {
    Ok(InterceptedService::new(
        lazy_channel(url, connect_timeout)?,
        TraceInterceptor,
    ))
}

/// Creates a lazily connecting channel to `url` with a connect timeout.
///
/// # Errors
///
/// Returns [`GrpcError::InvalidEndpoint`] for a malformed URL.
pub fn lazy_channel(url: &str, connect_timeout: Duration) -> Result<Channel, GrpcError> {
    let endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|error| GrpcError::InvalidEndpoint {
            url: url.to_owned(),
            reason: error.to_string(),
        })?;
    Ok(endpoint
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

//! The edges every spamflow service shares: command-line and environment configuration,
//! logging and tracing, trace-context propagation, metrics and the health endpoint, Kafka
//! clients and topics, gRPC serving with health and reflection, the Redis (or in-memory)
//! store, and shutdown signals.
//!
//! Services call these helpers instead of repeating plumbing, so a fix here reaches all of
//! them.

#![forbid(unsafe_code)]

pub mod cli;
pub mod convert;
pub mod grpc;
pub mod grpc_status;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod pipeline;
pub mod propagation;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod timefmt;

/// Milliseconds since the Unix epoch, for event timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

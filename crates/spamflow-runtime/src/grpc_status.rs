//! The status codes that a spamflow gRPC server returns for what fails before or around its
//! handlers: requests that do not decode, requests over the message size limit, and the
//! server's own deadline.
//!
//! tonic itself gives INTERNAL to a request whose protobuf does not decode (a string field that
//! is not UTF-8, a truncated field), OUT_OF_RANGE to one above its message size limit, and
//! CANCELLED to a call past its server deadline. A client then cannot tell a bad request from a broken
//! server, or a slow call from one it cancelled. [`GrpcStatusLayer`] returns INVALID_ARGUMENT
//! for the first two, as for every other bad request, and DEADLINE_EXCEEDED for the deadline.
//! Framing errors below protobuf (a truncated frame, a compressed flag without an encoding)
//! stay INTERNAL, as tonic returns them: they are faults of the transport, not of a field.

use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tonic::{Code, Status};

use crate::propagation::BoxFuture;

/// The start of tonic's message for a request whose protobuf does not decode.
const DECODE_ERROR: &str = "failed to decode Protobuf message";
/// The start of tonic's message for a request above the message size limit.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// A tower layer for gRPC servers that applies the server's deadline and gives the errors
/// tonic raises itself the codes of spamflow's own checks.
#[derive(Debug, Clone, Copy)]
pub struct GrpcStatusLayer {
    deadline: Duration,
}

impl GrpcStatusLayer {
    /// Creates the layer with the deadline for one request.
    pub fn new(deadline: Duration) -> Self {
        Self { deadline }
    }
}

impl<S> tower::Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcStatus {
            inner,
            deadline: self.deadline,
        }
    }
}

/// The service [`GrpcStatusLayer`] wraps around a gRPC server.
#[derive(Debug, Clone)]
pub struct GrpcStatus<S> {
    inner: S,
    deadline: Duration,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcStatus<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let deadline = self.deadline;
        // Take the service that poll_ready prepared and leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match tokio::time::timeout(deadline, inner.call(request)).await {
                Ok(Ok(mut response)) => {
                    if let Some(status) = Status::from_header_map(response.headers())
                        .and_then(|status| restated(&status, &method))
                    {
                        set_status(&mut response, &status);
                    }
                    Ok(response)
                }
                Ok(Err(error)) => Err(error),
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "{method} did not finish within the server's deadline of {} ms; retry \
                     later, or raise the server's --grpc-timeout-ms (SPAMFLOW_GRPC_TIMEOUT_MS)",
                    deadline.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

/// Returns the status to send in place of `status`, a trailers-only error of `method`, or
/// `None` to keep it.
fn restated(status: &Status, method: &str) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::Internal if message.starts_with(DECODE_ERROR) => {
            Some(Status::invalid_argument(format!(
                "the request to {method} is not a valid protobuf message of its type ({message}); \
                 send the fields of proto/spamflow/v1, with UTF-8 text in every string field"
            )))
        }
        Code::OutOfRange if message.starts_with(TOO_LARGE) => {
            Some(Status::invalid_argument(format!(
                "the request to {method} is larger than this server accepts in one gRPC \
                 message ({message}); send a smaller message, or fewer items per call"
            )))
        }
        _ => None,
    }
}

/// Replaces the status headers of a trailers-only response.
fn set_status<R>(response: &mut http::Response<R>, status: &Status) {
    let headers = response.headers_mut();
    headers.remove("grpc-status-details-bin");
    if let Err(unencodable) = status.add_header(headers) {
        // The message is built here from tonic's, so this is not expected; keep the code.
        tracing::warn!(error = %unencodable, "failed to restate a gRPC status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_become_invalid_argument() {
        let status = Status::internal(
            "failed to decode Protobuf message: ClassifyRequest.content: invalid string value",
        );
        let restated = restated(&status, "/spamflow.v1.SpamDetector/Classify").unwrap();
        assert_eq!(restated.code(), Code::InvalidArgument);
        assert!(restated.message().contains("ClassifyRequest.content"));
        assert!(
            restated
                .message()
                .contains("/spamflow.v1.SpamDetector/Classify")
        );
    }

    #[test]
    fn oversized_requests_become_invalid_argument() {
        let status = Status::out_of_range(
            "Error, decoded message length too large: found 31457255 bytes, the limit is: 20971520",
        );
        let restated = restated(&status, "/spamflow.v1.SpamDetector/Classify").unwrap();
        assert_eq!(restated.code(), Code::InvalidArgument);
        assert!(restated.message().contains("the limit is: 20971520"));
    }

    #[test]
    fn other_errors_stay() {
        let framing = Status::internal("Unexpected EOF decoding stream.");
        assert!(restated(&framing, "/a/B").is_none());
        let handler = Status::out_of_range("page 9 is past the last page");
        assert!(restated(&handler, "/a/B").is_none());
        let unavailable = Status::unavailable("Redis is down");
        assert!(restated(&unavailable, "/a/B").is_none());
    }
}

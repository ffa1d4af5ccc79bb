//! The error type of this crate. Messages name the method, the status and what to do, and
//! never carry credentials, tokens or message content.

use std::path::PathBuf;

/// Everything that can go wrong talking to Gmail.
#[derive(Debug, thiserror::Error)]
pub enum GmailError {
    /// `users.history.list` returned 404: the start history id is older than Gmail keeps.
    #[error(
        "history id {start_history_id} is older than the mailbox history Gmail keeps; a full \
         sync is needed"
    )]
    HistoryExpired {
        /// The history id that was too old.
        start_history_id: u64,
    },
    /// Gmail returned an HTTP error status.
    #[error("gmail {method} failed with HTTP {status} ({reason}): {message}")]
    Api {
        /// The API method, such as `users.messages.get`.
        method: &'static str,
        /// The HTTP status code.
        status: u16,
        /// Google's error reason or status name, such as `rateLimitExceeded`.
        reason: String,
        /// Google's error message.
        message: String,
    },
    /// The request got no HTTP response (connection refused, reset, timed out).
    #[error("gmail {method} failed to reach the server: {detail}")]
    Transport {
        /// The API method.
        method: &'static str,
        /// The HTTP client's error.
        detail: String,
    },
    /// No access token could be obtained for the call.
    #[error(
        "gmail {method} failed to get an access token: {detail}; check the credentials file, \
         and for a Desktop app client run `gmail-integration auth` again"
    )]
    Auth {
        /// The API method.
        method: &'static str,
        /// The error of the token endpoint or the token cache, without secrets.
        detail: String,
    },
    /// Gmail returned 2xx with a body that does not fit the expected shape.
    #[error("gmail {method} returned an invalid response: {detail}")]
    InvalidResponse {
        /// The API method.
        method: &'static str,
        /// The problem found in it.
        detail: String,
    },
    /// A retryable error persisted through every attempt.
    #[error("gmail {method} still failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// The API method.
        method: &'static str,
        /// Attempts made, the first included.
        attempts: u32,
        /// The error of the last attempt.
        last: Box<GmailError>,
    },
    /// The credentials file is missing, unreadable or of an unknown kind.
    #[error("invalid Gmail credentials file {path}: {detail}")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The problem found in it (never its content).
        detail: String,
    },
    /// The token cache file could not be prepared.
    #[error("failed to prepare the Gmail token file {path}: {detail}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The failed step.
        detail: String,
    },
    /// A setting is invalid; the message names the flag.
    #[error("{0}")]
    Config(String),
}

impl GmailError {
    /// Returns the HTTP status when Gmail returned one, looking through
    /// [`GmailError::RetriesExhausted`].
    pub fn status(&self) -> Option<u16> {
        match self {
            GmailError::Api { status, .. } => Some(*status),
            GmailError::HistoryExpired { .. } => Some(404),
            GmailError::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Returns whether a later attempt may succeed without a change of settings: rate limits,
    /// server errors and transport failures, including those that exhausted their retries.
    pub fn is_transient(&self) -> bool {
        match self {
            GmailError::Api { status, reason, .. } => {
                crate::backoff::is_retryable_status(*status) || is_rate_limit_reason(reason)
            }
            GmailError::Transport { .. } => true,
            GmailError::RetriesExhausted { last, .. } => last.is_transient(),
            _ => false,
        }
    }
}

/// Returns whether a Google error reason means "slow down" even though the status is 403.
pub(crate) fn is_rate_limit_reason(reason: &str) -> bool {
    matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_rate_limit_is_transient() {
        let error = GmailError::Api {
            method: "users.messages.get",
            status: 403,
            reason: "userRateLimitExceeded".into(),
            message: "slow down".into(),
        };
        assert!(error.is_transient());
        let error = GmailError::Api {
            method: "users.messages.get",
            status: 403,
            reason: "PERMISSION_DENIED".into(),
            message: "no".into(),
        };
        assert!(!error.is_transient());
    }

    #[test]
    fn exhausted_retries_keep_the_last_status() {
        let error = GmailError::RetriesExhausted {
            method: "users.history.list",
            attempts: 3,
            last: Box::new(GmailError::Api {
                method: "users.history.list",
                status: 503,
                reason: "UNAVAILABLE".into(),
                message: "try later".into(),
            }),
        };
        assert_eq!(error.status(), Some(503));
        assert!(error.is_transient());
        assert!(error.to_string().contains("after 3 attempts"));
    }
}

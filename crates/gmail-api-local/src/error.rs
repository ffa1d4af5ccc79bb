//! The one error type of this crate, with the HTTP status and Google status string each
//! variant maps to.

use std::path::PathBuf;

/// Everything that can fail in the local Gmail API, from loading a folder to one request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mailbox folder or one of its files could not be read.
    #[error("failed to read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The mailbox folder is not a folder.
    #[error("mailbox folder {0} is not a directory; set --mailbox-dir to a folder of .eml files")]
    NotADirectory(PathBuf),

    /// A request parameter or body field has an invalid value.
    #[error("invalid {name} {value:?}: {reason}")]
    InvalidArgument {
        name: &'static str,
        value: String,
        reason: String,
    },

    /// A term of the `q` search query is not supported or malformed.
    #[error("invalid query term {term:?}: {reason}")]
    InvalidQuery { term: String, reason: String },

    /// A label id in a request names no label of the mailbox.
    #[error("invalid label: {0}")]
    InvalidLabel(String),

    /// A message id names no message of the mailbox.
    #[error("message {0} not found")]
    MessageNotFound(String),

    /// A label id names no label of the mailbox.
    #[error("label {0} not found")]
    LabelNotFound(String),

    /// labels.create was asked for a name that a label already has.
    #[error("label name {0:?} exists or conflicts with an existing label")]
    LabelExists(String),

    /// history.list was asked to start before the oldest retained record.
    #[error(
        "startHistoryId {start} is older than the retained history, which starts after {oldest}; \
         do a full sync"
    )]
    HistoryExpired { start: u64, oldest: u64 },

    /// The history_404 fault switch is on.
    #[error("requested entity was not found (history_404 fault switch is on)")]
    HistoryFault,

    /// No endpoint of this server matches the method and path.
    #[error("no endpoint {method} {path} on this local Gmail API; see docs/gmail-api-local.md")]
    UnknownEndpoint { method: String, path: String },

    /// The address names no mailbox this server serves.
    #[error("mailbox {0} is not served here; add a subfolder named after it to --mailbox-dir")]
    MailboxNotFound(String),

    /// The request carries no valid access token.
    #[error("request had invalid authentication credentials: {0}")]
    Unauthenticated(&'static str),

    /// The token is valid but acts for another mailbox.
    #[error("delegation denied for {0}: the access token acts for another mailbox")]
    PermissionDenied(String),

    /// A rate-limit error injected by the status_429 fault switch.
    #[error("too many concurrent requests for user (status_429 fault switch)")]
    RateLimitFault,

    /// A server error injected by the status_500 fault switch.
    #[error("backend error (status_500 fault switch)")]
    BackendFault,

    /// An OAuth token request failed. The response uses the OAuth 2.0 error shape (RFC 6749
    /// section 5.2).
    #[error("{code}: {description}")]
    OAuth {
        code: &'static str,
        description: String,
    },
}

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(
        name: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            name,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// Returns the HTTP status code of the response for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Io { .. } | Self::NotADirectory(_) | Self::BackendFault => 500,
            Self::InvalidArgument { .. } | Self::InvalidQuery { .. } | Self::InvalidLabel(_) => 400,
            Self::OAuth { code, .. } if *code == "invalid_client" => 401,
            Self::OAuth { .. } => 400,
            Self::MessageNotFound(_)
            | Self::LabelNotFound(_)
            | Self::HistoryExpired { .. }
            | Self::HistoryFault
            | Self::MailboxNotFound(_)
            | Self::UnknownEndpoint { .. } => 404,
            Self::LabelExists(_) => 409,
            Self::Unauthenticated(_) => 401,
            Self::PermissionDenied(_) => 403,
            Self::RateLimitFault => 429,
        }
    }

    /// Returns the canonical Google status string (`google.rpc.Code` name) of this error.
    pub fn google_status(&self) -> &'static str {
        match self.http_status() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            429 => "RESOURCE_EXHAUSTED",
            _ => "INTERNAL",
        }
    }
}

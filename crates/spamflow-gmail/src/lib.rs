//! Gmail API client for spamflow, built on google-gmail1 7.
//!
//! It covers what the services need and nothing more. Credentials are detected from the
//! file's content (an installed-app OAuth client or a service account key), and yup-oauth2
//! caches and refreshes tokens. Each mailbox gets a hub whose base URL tests point at the
//! local Gmail API, a token bucket on Gmail quota units, and retries with exponential
//! backoff and full jitter on 429, 5xx and transport errors. Typed wrappers cover the calls
//! spamflow makes.
//!
//! Secrets (client secrets, private keys, access and refresh tokens) never reach `Debug`
//! output, error messages or logs. Logs name a mailbox by [`mailbox_tag`], not its address.

#![forbid(unsafe_code)]

mod args;
mod auth;
mod backoff;
mod client;
mod credentials;
mod error;
mod pool;
mod quota;
mod token_file;

pub use args::{DEFAULT_API_URL, DEFAULT_SCOPE, GmailArgs};
pub use auth::{secure_token_file, sign_in};
pub use backoff::{Backoff, is_retryable_status};
pub use client::{
    Gmail, History, HistoryRecord, LabelChange, LabelInfo, MailboxProfile, MessageRef, RawMessage,
    WatchInfo,
};
pub use credentials::{Credentials, CredentialsKind};
pub use error::GmailError;
pub use pool::GmailPool;
pub use quota::{Method, QuotaLimiter, TokenBucket};

/// google-gmail1 with its re-exported hyper, hyper-rustls and yup-oauth2 crates.
pub use google_gmail1 as api;

/// Gmail's system label for spam.
pub const LABEL_SPAM: &str = "SPAM";
/// Gmail's system label for the inbox.
pub const LABEL_INBOX: &str = "INBOX";

/// Returns a short stable tag for a mailbox address (`mbx-` and 12 hex digits of its
/// SHA-256), so logs and spans can tell mailboxes apart without carrying the address.
pub fn mailbox_tag(address: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(address.trim().to_ascii_lowercase().as_bytes());
    format!("mbx-{}", &hex::encode(digest)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_tag_is_stable_and_hides_address() {
        let tag = mailbox_tag("Me@Example.com");
        assert_eq!(tag, mailbox_tag("me@example.com"));
        assert_eq!(tag.len(), 16);
        assert!(!tag.contains("example"));
        assert_ne!(tag, mailbox_tag("other@example.com"));
    }
}

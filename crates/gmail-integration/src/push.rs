//! The Pub/Sub push endpoint: `POST /gmail/push?token=TOKEN` with a push envelope whose
//! `message.data` is base64 of `{"emailAddress": ..., "historyId": ...}`. A valid request
//! wakes that mailbox's sync at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::Notify;

/// Path of the push endpoint.
pub const PUSH_PATH: &str = "/gmail/push";

/// The content of a Gmail push notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The mailbox that changed.
    pub email_address: String,
    /// Its history id after the change.
    pub history_id: u64,
}

#[derive(Deserialize)]
struct Envelope {
    message: PushMessage,
}

#[derive(Deserialize)]
struct PushMessage {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GmailData {
    email_address: String,
    history_id: HistoryId,
}

/// Gmail sends the history id as a number; a string is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum HistoryId {
    Number(u64),
    Text(String),
}

/// Parses a Pub/Sub push envelope carrying a Gmail notification.
///
/// # Errors
///
/// A message naming the part that is invalid: the JSON, the base64 data or its fields.
pub fn parse_envelope(body: &[u8]) -> Result<Notification, String> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| format!("invalid push envelope: {error}"))?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(envelope.message.data.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(envelope.message.data.trim()))
        .map_err(|error| format!("invalid message.data: not base64 ({error})"))?;
    let gmail: GmailData = serde_json::from_slice(&data).map_err(|error| {
        format!("invalid message.data: expected emailAddress and historyId ({error})")
    })?;
    let history_id = match gmail.history_id {
        HistoryId::Number(id) => id,
        HistoryId::Text(text) => text
            .parse()
            .map_err(|_| format!("invalid historyId {text:?}: expected a decimal number"))?,
    };
    Ok(Notification {
        email_address: gmail.email_address,
        history_id,
    })
}

/// Compares two byte strings in time that depends only on their lengths, so response times
/// do not reveal how much of a guessed token was right.
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b));
    difference == 0
}

/// Returns the `token` parameter of a query string, or an empty string without one.
pub fn query_token(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// State of the push endpoint: the expected token and a wake-up per mailbox.
#[derive(Clone)]
pub struct PushState {
    token: Arc<String>,
    wakers: Arc<HashMap<String, Arc<Notify>>>,
}

impl PushState {
    /// Creates the state; `wakers` maps lowercase mailbox addresses to their sync's wake-up.
    pub fn new(token: String, wakers: HashMap<String, Arc<Notify>>) -> Self {
        Self {
            token: Arc::new(token),
            wakers: Arc::new(wakers),
        }
    }
}

/// Builds the router of the push endpoint.
pub fn router(state: PushState) -> Router {
    Router::new()
        .route(PUSH_PATH, post(receive))
        .with_state(state)
}

async fn receive(
    State(state): State<PushState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> impl IntoResponse {
    let token = query_token(query.as_deref().unwrap_or_default());
    if !constant_time_eq(token.as_bytes(), state.token.as_bytes()) {
        tracing::warn!("Rejected a push notification with a missing or wrong token");
        return (
            StatusCode::FORBIDDEN,
            "invalid or missing push token\n".to_owned(),
        );
    }
    let notification = match parse_envelope(&body) {
        Ok(notification) => notification,
        Err(message) => {
            tracing::warn!(error = %message, "Rejected an invalid push notification");
            return (StatusCode::BAD_REQUEST, format!("{message}\n"));
        }
    };
    let mailbox = notification.email_address.to_ascii_lowercase();
    let tag = spamflow_gmail::mailbox_tag(&mailbox);
    match state.wakers.get(&mailbox) {
        Some(waker) => {
            tracing::debug!(
                mailbox = %tag,
                history_id = notification.history_id,
                "Push notification wakes the sync"
            );
            waker.notify_one();
        }
        // Acknowledged all the same: Pub/Sub would otherwise redeliver it for days.
        None => tracing::warn!(mailbox = %tag, "Push notification for an unknown mailbox"),
    }
    (StatusCode::NO_CONTENT, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(data: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        serde_json::json!({"message": {"data": encoded, "messageId": "1",
            "publishTime": "2026-01-01T00:00:00Z"}, "subscription": "projects/p/subscriptions/s"})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn envelope_with_numeric_history_id_parses() {
        let notification = parse_envelope(&envelope(
            r#"{"emailAddress":"me@example.com","historyId":42}"#,
        ))
        .unwrap();
        assert_eq!(notification.email_address, "me@example.com");
        assert_eq!(notification.history_id, 42);
    }

    #[test]
    fn envelope_with_string_history_id_parses() {
        let notification = parse_envelope(&envelope(
            r#"{"emailAddress":"me@example.com","historyId":"7"}"#,
        ))
        .unwrap();
        assert_eq!(notification.history_id, 7);
    }

    #[test]
    fn envelope_errors_name_the_part() {
        let cases: [(&[u8], &str); 4] = [
            (b"not json", "invalid push envelope"),
            (br#"{"message":{"data":"%%%"}}"#, "not base64"),
            (&envelope(r#"{"emailAddress":"a@b.c"}"#), "historyId"),
            (
                &envelope(r#"{"emailAddress":"a@b.c","historyId":"x1"}"#),
                "\"x1\"",
            ),
        ];
        for (body, expected) in cases {
            let message = parse_envelope(body).unwrap_err();
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
    }

    #[test]
    fn query_token_is_decoded() {
        assert_eq!(query_token("a=1&token=abc%2Bd"), "abc+d");
        assert_eq!(query_token("a=1"), "");
        assert_eq!(query_token(""), "");
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret-token", b"secret-token"));
        assert!(!constant_time_eq(b"secret-token", b"secret-tokeN"));
        assert!(!constant_time_eq(b"secret", b"secret-token"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}

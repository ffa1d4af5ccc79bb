//! Pub/Sub-style push notifications: after a watched mailbox changes, one background task
//! POSTs `{"message":{"data":BASE64(JSON),"messageId","publishTime"},"subscription"}` to the
//! push endpoint with `?token=PUSH_TOKEN`, one notification at a time and in order.
//!
//! NOTE: only plain `http://` endpoints are supported, and a failed push is logged and
//! dropped rather than retried as Pub/Sub would.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The subscription name every envelope carries.
pub const SUBSCRIPTION: &str = "projects/local/subscriptions/gmail";

/// How long one push may take, connection and response included.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `http://host:port/path?query` push endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEndpoint {
    /// `host:port`, as the TCP connection and the Host header use it.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

impl FromStr for PushEndpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("push endpoint {url:?} must start with http:// (https is not supported)")
        })?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "push endpoint {url:?} needs a host[:port] without user info"
            ));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, port)| {
            !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let path_and_query = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            authority,
            path_and_query,
        })
    }
}

/// One notification waiting to be sent.
#[derive(Debug)]
struct Notification {
    email: String,
    history_id: u64,
}

/// The sending side of the push task.
#[derive(Debug, Clone)]
pub struct Pusher {
    sender: mpsc::UnboundedSender<Notification>,
}

impl Pusher {
    /// Starts the push task on the current Tokio runtime.
    pub fn start(endpoint: PushEndpoint, token: Option<String>) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Notification>();
        let path = match &token {
            Some(token) => {
                let separator = if endpoint.path_and_query.contains('?') {
                    '&'
                } else {
                    '?'
                };
                let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
                format!("{}{separator}token={encoded}", endpoint.path_and_query)
            }
            None => endpoint.path_and_query.clone(),
        };
        tokio::spawn(async move {
            let mut sequence: u64 = 0;
            while let Some(notification) = receiver.recv().await {
                sequence += 1;
                let body = envelope(&notification, sequence, spamflow_runtime::now_ms());
                let sent = tokio::time::timeout(
                    PUSH_TIMEOUT,
                    post(&endpoint.authority, &path, body.as_bytes()),
                )
                .await;
                match sent {
                    Ok(Ok(status)) if (200..300).contains(&status) => {
                        tracing::debug!(status, history_id = notification.history_id, "Pushed");
                    }
                    Ok(Ok(status)) => tracing::warn!(
                        status,
                        history_id = notification.history_id,
                        "Push endpoint rejected a notification; dropped it"
                    ),
                    Ok(Err(error)) => tracing::warn!(
                        %error,
                        history_id = notification.history_id,
                        "Failed to push a notification; dropped it"
                    ),
                    Err(_) => tracing::warn!(
                        history_id = notification.history_id,
                        timeout_s = PUSH_TIMEOUT.as_secs(),
                        "Push timed out; dropped it"
                    ),
                }
            }
        });
        Self { sender }
    }

    /// Queues a notification that `email` changed up to `history_id`.
    pub fn notify(&self, email: &str, history_id: u64) {
        // The task only ends with the runtime, so a failed send means shutdown is under way.
        let _ = self.sender.send(Notification {
            email: email.to_owned(),
            history_id,
        });
    }
}

/// Builds the push envelope JSON.
fn envelope(notification: &Notification, sequence: u64, now_ms: i64) -> String {
    let data = json!({
        "emailAddress": notification.email,
        "historyId": notification.history_id,
    });
    json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data.to_string()),
            "messageId": sequence.to_string(),
            "publishTime": spamflow_runtime::timefmt::rfc3339_millis(now_ms),
        },
        "subscription": SUBSCRIPTION,
    })
    .to_string()
}

/// Sends one HTTP/1.1 POST and returns the response status code.
async fn post(authority: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(authority).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let status_line = String::from_utf8_lossy(&response);
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("the push endpoint sent no HTTP status line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_endpoints() {
        let endpoint: PushEndpoint = "http://127.0.0.1:9401/push?x=1".parse().expect("parse");
        assert_eq!(endpoint.authority, "127.0.0.1:9401");
        assert_eq!(endpoint.path_and_query, "/push?x=1");
        let bare: PushEndpoint = "http://localhost".parse().expect("parse");
        assert_eq!(bare.authority, "localhost:80");
        assert_eq!(bare.path_and_query, "/");
        assert!("https://example.com/push".parse::<PushEndpoint>().is_err());
        assert!("http://user@host/".parse::<PushEndpoint>().is_err());
    }

    #[test]
    fn envelope_carries_base64_json() {
        let notification = Notification {
            email: "me@example.com".into(),
            history_id: 42,
        };
        let value: serde_json::Value =
            serde_json::from_str(&envelope(&notification, 7, 0)).expect("json");
        assert_eq!(value["subscription"], SUBSCRIPTION);
        assert_eq!(value["message"]["messageId"], "7");
        let data = base64::engine::general_purpose::STANDARD
            .decode(value["message"]["data"].as_str().expect("data"))
            .expect("base64");
        let data: serde_json::Value = serde_json::from_slice(&data).expect("inner json");
        assert_eq!(
            data,
            json!({"emailAddress": "me@example.com", "historyId": 42})
        );
    }
}

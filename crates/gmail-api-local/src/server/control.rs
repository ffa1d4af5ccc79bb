//! The control API for tests under `/control/`, without authentication, and `/healthz`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::{AppState, Params, error_response, json_response, lock};
use crate::error::Error;
use crate::faults::Faults;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliverBody {
    mailbox: Option<String>,
    raw_base64: String,
    label_ids: Option<Vec<String>>,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|error| {
        Error::invalid(
            "request body",
            String::from_utf8_lossy(&body[..body.len().min(200)]),
            format!("not the expected JSON: {error}"),
        )
    })
}

/// Decodes base64 in either alphabet, with or without padding, as test clients send both.
fn decode_base64(value: &str) -> Result<Vec<u8>, Error> {
    let trimmed: String = value
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|error| {
            Error::invalid(
                "raw_base64",
                value.chars().take(40).collect::<String>(),
                format!("not base64: {error}"),
            )
        })
}

/// `POST /control/deliver`: adds a message, records messagesAdded and pushes when watched.
pub(super) async fn deliver(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let result = (|| {
        let body: DeliverBody = parse(&body)?;
        let raw = decode_base64(&body.raw_base64)?;
        let now_ms = spamflow_runtime::now_ms();
        let mut mailboxes = state.mailboxes();
        let mailbox = mailboxes.get_mut(body.mailbox.as_deref())?;
        let (id, history_id) = mailbox.deliver(raw, body.label_ids, now_ms)?;
        let labels: Vec<String> = mailbox.get(&id)?.labels.iter().cloned().collect();
        let should_push = mailbox.watch_wants(&labels, now_ms);
        let email = mailbox.email().to_owned();
        drop(mailboxes);
        tracing::debug!(message_id = %id, history_id, "Delivered a message");
        state.notify(&email, history_id, should_push);
        Ok::<_, Error>(json!({ "id": id, "history_id": history_id }))
    })();
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error_response(&error),
    }
}

/// `GET /control/faults`: the current fault switches.
pub(super) async fn get_faults(State(state): State<Arc<AppState>>) -> Response {
    let faults = state.faults().clone();
    json_response(StatusCode::OK, &json!(faults))
}

/// `POST /control/faults`: replaces every fault switch; `{}` clears them.
pub(super) async fn set_faults(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match parse::<Faults>(&body) {
        Ok(faults) => {
            tracing::info!(?faults, "Fault switches set");
            *state.faults() = faults.clone();
            json_response(StatusCode::OK, &json!(faults))
        }
        Err(error) => error_response(&error),
    }
}

/// `GET /control/modifications`: every modify and batchModify effect, in order.
pub(super) async fn modifications(State(state): State<Arc<AppState>>) -> Response {
    let entries = lock(&state.modifications).clone();
    json_response(StatusCode::OK, &json!(entries))
}

/// `GET /control/messages?mailbox=`: every message of a mailbox with its labels.
pub(super) async fn messages(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let mailboxes = state.mailboxes();
    match mailboxes.get(params.one("mailbox").filter(|name| !name.is_empty())) {
        Ok(mailbox) => {
            let messages: Vec<_> = mailbox
                .messages()
                .map(|message| {
                    json!({
                        "id": message.id,
                        "label_ids": message.labels,
                        "history_id": message.history_id,
                        "internal_date": message.internal_date_ms,
                        "source": message.source,
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                &json!({
                    "mailbox": mailbox.email(),
                    "history_id": mailbox.history_id(),
                    "messages": messages,
                }),
            )
        }
        Err(error) => error_response(&error),
    }
}

/// `GET /control/requests`: counts of Gmail API calls by method, faulted calls included.
pub(super) async fn requests(State(state): State<Arc<AppState>>) -> Response {
    let counts = lock(&state.requests).clone();
    json_response(StatusCode::OK, &json!(counts))
}

/// `GET /healthz`: 200 with the served mailboxes' count.
pub(super) async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let mailboxes = state.mailboxes().emails().count();
    json_response(
        StatusCode::OK,
        &json!({ "status": "ok", "mailboxes": mailboxes }),
    )
}

//! Handlers of the Gmail REST v1 paths under `/gmail/v1/users/{userId}/`.
//!
//! Every call first counts itself, waits `delay_ms`, consumes an injected 429 or 500, then
//! checks the bearer token and the userId, in that order.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{self as render, Format};
use super::{AppState, ModificationEntry, Params, error_response, json_response, lock};
use crate::error::Error;
use crate::history::{HistoryRequest, HistoryType};
use crate::mailbox::{LabelChange, ListRequest};

/// Runs the steps every Gmail call shares and returns the address of the mailbox the call
/// acts on.
async fn begin(
    state: &AppState,
    method: &'static str,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<String, Error> {
    *lock(&state.requests).entry(method).or_insert(0) += 1;
    let delay_ms = state.faults().delay_ms;
    if delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    }
    if let Some(fault) = state.faults().take_status() {
        tracing::debug!(method, status = fault.http_status(), "Injected a fault");
        return Err(fault);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(Error::Unauthenticated(
            "expected an Authorization: Bearer header with a token from /token",
        ))?;
    let now_ms = spamflow_runtime::now_ms();
    let token_mailbox = state.tokens().mailbox_for(token.trim(), now_ms)?.to_owned();
    if user_id == "me" || user_id.eq_ignore_ascii_case(&token_mailbox) {
        Ok(token_mailbox)
    } else {
        Err(Error::PermissionDenied(user_id.to_owned()))
    }
}

/// Turns a handler result into a response.
fn respond(result: Result<Value, Error>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error_response(&error),
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Error> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        Error::invalid(
            "request body",
            String::from_utf8_lossy(&body[..body.len().min(200)]),
            format!("not the expected JSON: {error}"),
        )
    })
}

pub(super) async fn get_profile(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let email = begin(&state, "users.getProfile", &headers, &user_id).await?;
            let mailboxes = state.mailboxes();
            let mailbox = mailboxes.get(Some(&email))?;
            let total = mailbox.messages().count();
            Ok(json!({
                "emailAddress": mailbox.email(),
                "messagesTotal": total,
                "threadsTotal": total,
                "historyId": mailbox.history_id().to_string(),
            }))
        }
        .await,
    )
}

pub(super) async fn list_messages(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let email = begin(&state, "messages.list", &headers, &user_id).await?;
            let params = Params::parse(query.as_deref());
            let request = ListRequest {
                label_ids: params.all("labelIds"),
                q: params.one("q").map(str::to_owned),
                include_spam_trash: params.flag("includeSpamTrash")?,
                max_results: params.number("maxResults")?,
                page_token: params.one("pageToken").map(str::to_owned),
            };
            let page = state.mailboxes().get(Some(&email))?.list(&request)?;
            let mut value = json!({ "resultSizeEstimate": page.result_size_estimate });
            if !page.ids.is_empty() {
                value["messages"] = page.ids.iter().map(|id| render::message_ref(id)).collect();
            }
            if let Some(token) = page.next_page_token {
                value["nextPageToken"] = json!(token);
            }
            Ok(value)
        }
        .await,
    )
}

pub(super) async fn get_message(
    State(state): State<Arc<AppState>>,
    Path((user_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let email = begin(&state, "messages.get", &headers, &user_id).await?;
            let params = Params::parse(query.as_deref());
            let format = Format::parse(params.one("format"))?;
            let metadata_headers = params.all("metadataHeaders");
            let mailboxes = state.mailboxes();
            let message = mailboxes.get(Some(&email))?.get(&id)?;
            Ok(render::message(message, format, &metadata_headers))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModifyBody {
    #[serde(default)]
    add_label_ids: Vec<String>,
    #[serde(default)]
    remove_label_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchModifyBody {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    add_label_ids: Vec<String>,
    #[serde(default)]
    remove_label_ids: Vec<String>,
}

/// Maximum ids per batchModify call, as in Gmail.
const MAX_BATCH_IDS: usize = 1000;

/// Applies a modify to `ids`, logs it for `/control/modifications` and pushes a
/// notification when the watch wants the change.
fn apply_modify(
    state: &AppState,
    email: &str,
    method: &'static str,
    ids: &[String],
    add: &[String],
    remove: &[String],
) -> Result<Vec<LabelChange>, Error> {
    let now_ms = spamflow_runtime::now_ms();
    let (changes, history_id, should_push) = {
        let mut mailboxes = state.mailboxes();
        let mailbox = mailboxes.get_mut(Some(email))?;
        let changes = mailbox.modify(ids, add, remove)?;
        let touched: Vec<String> = changes
            .iter()
            .filter(|change| !change.added.is_empty() || !change.removed.is_empty())
            .flat_map(|change| {
                let labels = mailbox
                    .get(&change.message_id)
                    .map(|message| message.labels.iter().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                labels
                    .into_iter()
                    .chain(change.added.iter().cloned())
                    .chain(change.removed.iter().cloned())
            })
            .collect();
        let should_push = !touched.is_empty() && mailbox.watch_wants(&touched, now_ms);
        (changes, mailbox.history_id(), should_push)
    };
    lock(&state.modifications).extend(changes.iter().map(|change| ModificationEntry {
        mailbox: email.to_owned(),
        message_id: change.message_id.clone(),
        method,
        add_label_ids: add.to_vec(),
        remove_label_ids: remove.to_vec(),
        added: change.added.clone(),
        removed: change.removed.clone(),
    }));
    tracing::debug!(
        method,
        messages = changes.len(),
        history_id,
        "Modified labels"
    );
    state.notify(email, history_id, should_push);
    Ok(changes)
}

pub(super) async fn modify_message(
    State(state): State<Arc<AppState>>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let email = begin(&state, "messages.modify", &headers, &user_id).await?;
            let body: ModifyBody = parse_body(&body)?;
            apply_modify(
                &state,
                &email,
                "messages.modify",
                std::slice::from_ref(&id),
                &body.add_label_ids,
                &body.remove_label_ids,
            )?;
            let mailboxes = state.mailboxes();
            let message = mailboxes.get(Some(&email))?.get(&id)?;
            Ok(render::message(message, Format::Minimal, &[]))
        }
        .await,
    )
}

pub(super) async fn batch_modify(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let email = begin(&state, "messages.batchModify", &headers, &user_id).await?;
        let body: BatchModifyBody = parse_body(&body)?;
        if body.ids.is_empty() || body.ids.len() > MAX_BATCH_IDS {
            return Err(Error::invalid(
                "ids",
                body.ids.len().to_string(),
                format!("batchModify needs 1 to {MAX_BATCH_IDS} message ids"),
            ));
        }
        apply_modify(
            &state,
            &email,
            "messages.batchModify",
            &body.ids,
            &body.add_label_ids,
            &body.remove_label_ids,
        )
    }
    .await;
    match result {
        // Gmail returns an empty body for batchModify.
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(&error),
    }
}

pub(super) async fn list_history(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let email = begin(&state, "history.list", &headers, &user_id).await?;
            if state.faults().history_404 {
                return Err(Error::HistoryFault);
            }
            let params = Params::parse(query.as_deref());
            let start_history_id = params.number::<u64>("startHistoryId")?.ok_or_else(|| {
                Error::invalid(
                    "startHistoryId",
                    "",
                    "is required; take it from getProfile or a message",
                )
            })?;
            let history_types = params
                .all("historyTypes")
                .iter()
                .map(|value| HistoryType::parse(value))
                .collect::<Result<Vec<_>, _>>()?;
            let request = HistoryRequest {
                start_history_id,
                label_id: params.one("labelId").map(str::to_owned),
                history_types,
                max_results: params.number("maxResults")?,
                page_token: params.one("pageToken").map(str::to_owned),
            };
            let mailboxes = state.mailboxes();
            let mailbox = mailboxes.get(Some(&email))?;
            let page = mailbox.history(&request)?;
            let mut value = json!({ "historyId": mailbox.history_id().to_string() });
            if !page.records.is_empty() {
                value["history"] = page.records.iter().map(render::history_record).collect();
            }
            if let Some(token) = page.next_page_token {
                value["nextPageToken"] = json!(token);
            }
            Ok(value)
        }
        .await,
    )
}

pub(super) async fn list_labels(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let email = begin(&state, "labels.list", &headers, &user_id).await?;
            let mailboxes = state.mailboxes();
            let labels: Vec<Value> = mailboxes
                .get(Some(&email))?
                .labels()
                .all()
                .map(|label| render::label(label, None))
                .collect();
            Ok(json!({ "labels": labels }))
        }
        .await,
    )
}

pub(super) async fn get_label(
    State(state): State<Arc<AppState>>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let email = begin(&state, "labels.get", &headers, &user_id).await?;
            let mailboxes = state.mailboxes();
            let mailbox = mailboxes.get(Some(&email))?;
            let label = mailbox
                .labels()
                .get(&id)
                .ok_or_else(|| Error::LabelNotFound(id.clone()))?;
            Ok(render::label(label, Some(mailbox.label_counts(&id))))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateLabelBody {
    #[serde(default)]
    name: String,
    message_list_visibility: Option<String>,
    label_list_visibility: Option<String>,
}

pub(super) async fn create_label(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let email = begin(&state, "labels.create", &headers, &user_id).await?;
            let body: CreateLabelBody = parse_body(&body)?;
            let mut mailboxes = state.mailboxes();
            let label = mailboxes.get_mut(Some(&email))?.labels_mut().create(
                &body.name,
                body.message_list_visibility.as_deref(),
                body.label_list_visibility.as_deref(),
            )?;
            Ok(render::label(&label, None))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchBody {
    #[serde(default)]
    topic_name: String,
    #[serde(default)]
    label_ids: Vec<String>,
    label_filter_behavior: Option<String>,
    /// Older name of `labelFilterBehavior`, still accepted by Gmail.
    label_filter_action: Option<String>,
}

pub(super) async fn watch(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        async {
            let email = begin(&state, "users.watch", &headers, &user_id).await?;
            let body: WatchBody = parse_body(&body)?;
            if body.topic_name.trim().is_empty() {
                return Err(Error::invalid(
                    "topicName",
                    "",
                    "is required, for example projects/local/topics/gmail",
                ));
            }
            let behavior = body.label_filter_behavior.or(body.label_filter_action);
            let mut mailboxes = state.mailboxes();
            let (history_id, expiration_ms) = mailboxes.get_mut(Some(&email))?.watch(
                body.label_ids,
                behavior.as_deref(),
                spamflow_runtime::now_ms(),
            )?;
            tracing::info!(
                history_id,
                pushing = state.pusher.is_some(),
                "Watch started"
            );
            Ok(json!({
                "historyId": history_id.to_string(),
                "expiration": expiration_ms.to_string(),
            }))
        }
        .await,
    )
}

pub(super) async fn stop(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let email = begin(&state, "users.stop", &headers, &user_id).await?;
        state.mailboxes().get_mut(Some(&email))?.stop();
        tracing::info!("Watch stopped");
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(&error),
    }
}

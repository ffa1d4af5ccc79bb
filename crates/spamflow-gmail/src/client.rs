//! [`Gmail`], the client of one mailbox: quota, retries and typed results around the
//! google-gmail1 hub.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use google_gmail1::api::{Label, Message, ModifyMessageRequest, WatchRequest};
use google_gmail1::hyper_util::client::legacy::Client;
use google_gmail1::hyper_util::rt::TokioExecutor;

use crate::args::GmailArgs;
use crate::auth::{Auth, Connector};
use crate::backoff::Backoff;
use crate::error::GmailError;
use crate::quota::{Method, QuotaLimiter};

/// The user id Gmail reads as "the mailbox the token acts for".
const ME: &str = "me";
/// Page size of list calls; Gmail's maximum is 500.
const MAX_PAGE_SIZE: usize = 500;
/// History record types spamflow reads.
const HISTORY_TYPES: [&str; 3] = ["messageAdded", "labelAdded", "labelRemoved"];

/// The mailbox profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxProfile {
    /// The mailbox address.
    pub email_address: String,
    /// The mailbox's current history id.
    pub history_id: u64,
    /// Messages in the mailbox, as Gmail counts them.
    pub messages_total: u64,
}

/// A message fetched with `format=RAW`. `Debug` shows the size of the body, not the body.
#[derive(Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The Gmail message id.
    pub id: String,
    /// The Gmail thread id (empty when Gmail sent none).
    pub thread_id: String,
    /// The message's label ids.
    pub label_ids: Vec<String>,
    /// When Gmail received the message, in milliseconds since the Unix epoch (0 when
    /// unknown).
    pub internal_date_ms: i64,
    /// The history id of the message's last change, when Gmail sent it.
    pub history_id: Option<u64>,
    /// The RFC 5322 bytes.
    pub raw: Vec<u8>,
}

impl fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMessage")
            .field("id", &self.id)
            .field("thread_id", &self.thread_id)
            .field("label_ids", &self.label_ids)
            .field("internal_date_ms", &self.internal_date_ms)
            .field("raw_bytes", &self.raw.len())
            .finish()
    }
}

/// A message as history records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// The Gmail message id.
    pub id: String,
    /// The Gmail thread id (empty when Gmail sent none).
    pub thread_id: String,
    /// The message's labels after the recorded change.
    pub label_ids: Vec<String>,
}

/// Labels added to or removed from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelChange {
    /// The message.
    pub message: MessageRef,
    /// The labels that changed.
    pub label_ids: Vec<String>,
}

/// One history record: the changes Gmail filed under one history id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryRecord {
    /// The record's history id.
    pub id: u64,
    /// Messages added to the mailbox.
    pub messages_added: Vec<MessageRef>,
    /// Labels added to messages.
    pub labels_added: Vec<LabelChange>,
    /// Labels removed from messages.
    pub labels_removed: Vec<LabelChange>,
}

/// Every history record after a start id, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The mailbox's history id when the last page was read; the next incremental sync
    /// starts here.
    pub history_id: u64,
    /// The records, oldest first.
    pub records: Vec<HistoryRecord>,
}

/// A label of the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelInfo {
    /// The label id, such as `SPAM` or `Label_12`.
    pub id: String,
    /// The display name.
    pub name: String,
    /// `system` or `user`.
    pub kind: String,
}

/// The response to `users.watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchInfo {
    /// The mailbox's history id when the watch started.
    pub history_id: u64,
    /// When the watch expires, in milliseconds since the Unix epoch.
    pub expiration_ms: i64,
}

/// The Gmail client of one mailbox. Every call waits for quota units, retries 429, 5xx,
/// 403 rate-limit responses and transport errors with backoff, and returns typed results.
pub struct Gmail {
    mailbox: String,
    tag: String,
    hub: google_gmail1::Gmail<Connector>,
    quota: QuotaLimiter,
    backoff: Backoff,
    scope: String,
    timeout: Duration,
}

impl fmt::Debug for Gmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gmail")
            .field("mailbox", &self.tag)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Gmail {
    /// Builds the client of `mailbox` around an authenticator.
    pub(crate) fn with_auth(
        args: &GmailArgs,
        mailbox: &str,
        auth: Auth,
        connector: Connector,
    ) -> Result<Self, GmailError> {
        args.check_limits()?;
        let base_url = args.normalized_api_url()?;
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let mut hub = google_gmail1::Gmail::new(client, auth);
        hub.base_url(base_url.clone());
        hub.root_url(base_url);
        Ok(Self {
            mailbox: mailbox.to_owned(),
            tag: crate::mailbox_tag(mailbox),
            hub,
            quota: QuotaLimiter::new(args.quota_units_per_second),
            backoff: args.backoff()?,
            scope: args.scope.trim().to_owned(),
            timeout: Duration::from_millis(args.request_timeout_ms),
        })
    }

    pub(crate) fn set_mailbox(&mut self, mailbox: &str) {
        self.mailbox = mailbox.to_owned();
        self.tag = crate::mailbox_tag(mailbox);
    }

    /// Returns the mailbox address.
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// Returns the mailbox's log tag ([`crate::mailbox_tag`]).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Reads the mailbox profile (`users.getProfile`).
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call; [`GmailError::InvalidResponse`] without an address or
    /// history id.
    pub async fn profile(&self) -> Result<MailboxProfile, GmailError> {
        let method = Method::GetProfile;
        let profile = self
            .call(method, || {
                self.hub
                    .users()
                    .get_profile(ME)
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await?;
        Ok(MailboxProfile {
            email_address: profile
                .email_address
                .ok_or_else(|| missing(method, "emailAddress"))?,
            history_id: profile
                .history_id
                .ok_or_else(|| missing(method, "historyId"))?,
            messages_total: profile.messages_total.unwrap_or(0).max(0) as u64,
        })
    }

    /// Lists message ids matching `query` (Gmail search syntax; `None` for all) and carrying
    /// every label in `label_ids`, newest first, at most `cap` of them. Spam and trash are
    /// included only when a label or the query selects them.
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the calls, such as a 400 naming an unsupported query term.
    pub async fn list_message_ids(
        &self,
        query: Option<&str>,
        label_ids: &[String],
        cap: usize,
    ) -> Result<Vec<String>, GmailError> {
        let method = Method::MessagesList;
        let mut ids = Vec::new();
        let mut page_token: Option<String> = None;
        while ids.len() < cap {
            let page_size = (cap - ids.len()).min(MAX_PAGE_SIZE) as u32;
            let page = self
                .call(method, || {
                    let mut call = self
                        .hub
                        .users()
                        .messages_list(ME)
                        .max_results(page_size)
                        .add_scope(self.scope.as_str());
                    if let Some(query) = query.filter(|query| !query.trim().is_empty()) {
                        call = call.q(query);
                    }
                    for label in label_ids {
                        call = call.add_label_ids(label);
                    }
                    if let Some(token) = &page_token {
                        call = call.page_token(token);
                    }
                    call.doit()
                })
                .await?;
            for message in page.messages.unwrap_or_default() {
                if ids.len() >= cap {
                    break;
                }
                ids.push(message.id.ok_or_else(|| missing(method, "messages[].id"))?);
            }
            page_token = page.next_page_token.filter(|token| !token.is_empty());
            if page_token.is_none() {
                break;
            }
        }
        Ok(ids)
    }

    /// Fetches a message with `format=RAW`.
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call (404 when the message is gone);
    /// [`GmailError::InvalidResponse`] without the raw body.
    pub async fn get_raw(&self, id: &str) -> Result<RawMessage, GmailError> {
        let method = Method::MessagesGet;
        let message = self
            .call(method, || {
                self.hub
                    .users()
                    .messages_get(ME, id)
                    .format("raw")
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await?;
        Ok(RawMessage {
            id: message.id.unwrap_or_else(|| id.to_owned()),
            thread_id: message.thread_id.unwrap_or_default(),
            label_ids: message.label_ids.unwrap_or_default(),
            internal_date_ms: message.internal_date.unwrap_or(0),
            history_id: message.history_id,
            raw: message.raw.ok_or_else(|| missing(method, "raw"))?,
        })
    }

    /// Reads a message's current label ids (`format=MINIMAL`).
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call.
    pub async fn get_labels(&self, id: &str) -> Result<Vec<String>, GmailError> {
        let message = self
            .call(Method::MessagesGet, || {
                self.hub
                    .users()
                    .messages_get(ME, id)
                    .format("minimal")
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await?;
        Ok(message.label_ids.unwrap_or_default())
    }

    /// Reads every history record after `start_history_id` (all pages): messages added,
    /// labels added and labels removed.
    ///
    /// # Errors
    ///
    /// [`GmailError::HistoryExpired`] when Gmail returns 404, meaning the start id is older
    /// than the history it keeps and a full sync is needed; any other [`GmailError`].
    pub async fn history(&self, start_history_id: u64) -> Result<History, GmailError> {
        let method = Method::HistoryList;
        let mut records = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let page = self
                .call(method, || {
                    let mut call = self
                        .hub
                        .users()
                        .history_list(ME)
                        .start_history_id(start_history_id)
                        .max_results(MAX_PAGE_SIZE as u32)
                        .add_scope(self.scope.as_str());
                    for kind in HISTORY_TYPES {
                        call = call.add_history_types(kind);
                    }
                    if let Some(token) = &page_token {
                        call = call.page_token(token);
                    }
                    call.doit()
                })
                .await
                .map_err(|error| match error.status() {
                    Some(404) => GmailError::HistoryExpired { start_history_id },
                    _ => error,
                })?;
            for record in page.history.unwrap_or_default() {
                records.push(convert_record(record)?);
            }
            page_token = page.next_page_token.filter(|token| !token.is_empty());
            if page_token.is_none() {
                let history_id = page
                    .history_id
                    .ok_or_else(|| missing(method, "historyId"))?;
                records.sort_by_key(|record| record.id);
                return Ok(History {
                    history_id,
                    records,
                });
            }
        }
    }

    /// Adds and removes labels of a message (`users.messages.modify`) and returns its labels
    /// afterwards.
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call, such as 400 for an unknown label id.
    pub async fn modify<A, R>(
        &self,
        id: &str,
        add: &[A],
        remove: &[R],
    ) -> Result<Vec<String>, GmailError>
    where
        A: AsRef<str>,
        R: AsRef<str>,
    {
        let request = ModifyMessageRequest {
            add_label_ids: Some(add.iter().map(|label| label.as_ref().to_owned()).collect()),
            remove_label_ids: Some(
                remove
                    .iter()
                    .map(|label| label.as_ref().to_owned())
                    .collect(),
            ),
        };
        let message: Message = self
            .call(Method::MessagesModify, || {
                self.hub
                    .users()
                    .messages_modify(request.clone(), ME, id)
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await?;
        Ok(message.label_ids.unwrap_or_default())
    }

    /// Lists the mailbox's labels.
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call.
    pub async fn labels(&self) -> Result<Vec<LabelInfo>, GmailError> {
        let list = self
            .call(Method::LabelsList, || {
                self.hub
                    .users()
                    .labels_list(ME)
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await?;
        Ok(list
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter_map(|label| {
                Some(LabelInfo {
                    id: label.id?,
                    name: label.name?,
                    kind: label.type_.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Returns the id of the label named `name` (compared case-insensitively, as Gmail
    /// does), creating a user label when there is none.
    ///
    /// # Errors
    ///
    /// [`GmailError::Config`] for an empty name; any [`GmailError`] of the calls.
    pub async fn ensure_label(&self, name: &str) -> Result<String, GmailError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(GmailError::Config(
                "invalid label name: it must not be empty".to_owned(),
            ));
        }
        if let Some(id) = self.find_label(name).await? {
            return Ok(id);
        }
        let label = Label {
            name: Some(name.to_owned()),
            label_list_visibility: Some("labelShow".to_owned()),
            message_list_visibility: Some("show".to_owned()),
            ..Label::default()
        };
        let created = self
            .call(Method::LabelsCreate, || {
                self.hub
                    .users()
                    .labels_create(label.clone(), ME)
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await;
        match created {
            Ok(label) => label.id.ok_or_else(|| missing(Method::LabelsCreate, "id")),
            // Another client created it between the list and the create.
            Err(error) if error.status() == Some(409) => self.find_label(name).await?.ok_or(error),
            Err(error) => Err(error),
        }
    }

    async fn find_label(&self, name: &str) -> Result<Option<String>, GmailError> {
        Ok(self
            .labels()
            .await?
            .into_iter()
            .find(|label| label.name.eq_ignore_ascii_case(name))
            .map(|label| label.id))
    }

    /// Starts or renews push notifications to the Cloud Pub/Sub `topic` for changes to
    /// messages carrying any of `label_ids` (all messages when empty).
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call, such as 400 when Gmail may not publish to the topic.
    pub async fn watch(&self, topic: &str, label_ids: &[String]) -> Result<WatchInfo, GmailError> {
        let method = Method::Watch;
        let request = WatchRequest {
            topic_name: Some(topic.to_owned()),
            label_ids: (!label_ids.is_empty()).then(|| label_ids.to_vec()),
            label_filter_behavior: (!label_ids.is_empty()).then(|| "include".to_owned()),
            ..WatchRequest::default()
        };
        let answer = self
            .call(method, || {
                self.hub
                    .users()
                    .watch(request.clone(), ME)
                    .add_scope(self.scope.as_str())
                    .doit()
            })
            .await?;
        Ok(WatchInfo {
            history_id: answer
                .history_id
                .ok_or_else(|| missing(method, "historyId"))?,
            expiration_ms: answer
                .expiration
                .ok_or_else(|| missing(method, "expiration"))?,
        })
    }

    /// Stops push notifications (`users.stop`).
    ///
    /// # Errors
    ///
    /// Any [`GmailError`] of the call.
    pub async fn stop(&self) -> Result<(), GmailError> {
        self.call(Method::Stop, || {
            let sent = self
                .hub
                .users()
                .stop(ME)
                .add_scope(self.scope.as_str())
                .doit();
            async move { sent.await.map(|response| (response, ())) }
        })
        .await
    }

    /// Sends a call with quota, timeout and retries. `send` builds and sends one attempt.
    async fn call<T, F, Fut>(&self, method: Method, mut send: F) -> Result<T, GmailError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_gmail1::Result<(google_gmail1::common::Response, T)>>,
    {
        let attempts = self.backoff.max_attempts();
        let mut attempt = 0;
        loop {
            self.quota.acquire(method).await;
            let metrics = spamflow_runtime::metrics::global();
            let error = match tokio::time::timeout(self.timeout, send()).await {
                Ok(Ok((_, value))) => {
                    metrics.gmail_call(method.name(), "ok");
                    return Ok(value);
                }
                Ok(Err(error)) => convert_error(method, error),
                Err(_) => GmailError::Transport {
                    method: method.name(),
                    detail: format!("timed out after {} ms", self.timeout.as_millis()),
                },
            };
            if !error.is_transient() {
                metrics.gmail_call(method.name(), "failed");
                return Err(error);
            }
            attempt += 1;
            if attempt >= attempts {
                metrics.gmail_call(method.name(), "failed");
                return Err(GmailError::RetriesExhausted {
                    method: method.name(),
                    attempts,
                    last: Box::new(error),
                });
            }
            metrics.gmail_call(method.name(), "retried");
            let delay = self.backoff.delay(attempt - 1);
            tracing::warn!(
                mailbox = %self.tag,
                method = method.name(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "Retrying Gmail call"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

fn missing(method: Method, field: &str) -> GmailError {
    GmailError::InvalidResponse {
        method: method.name(),
        detail: format!("the field {field} is missing"),
    }
}

fn convert_record(record: google_gmail1::api::History) -> Result<HistoryRecord, GmailError> {
    let method = Method::HistoryList;
    let message_ref = |message: Option<Message>| -> Result<MessageRef, GmailError> {
        let message = message.ok_or_else(|| missing(method, "history[].message"))?;
        Ok(MessageRef {
            id: message
                .id
                .ok_or_else(|| missing(method, "history[].message.id"))?,
            thread_id: message.thread_id.unwrap_or_default(),
            label_ids: message.label_ids.unwrap_or_default(),
        })
    };
    let mut converted = HistoryRecord {
        id: record.id.ok_or_else(|| missing(method, "history[].id"))?,
        ..HistoryRecord::default()
    };
    for added in record.messages_added.unwrap_or_default() {
        converted.messages_added.push(message_ref(added.message)?);
    }
    for added in record.labels_added.unwrap_or_default() {
        converted.labels_added.push(LabelChange {
            message: message_ref(added.message)?,
            label_ids: added.label_ids.unwrap_or_default(),
        });
    }
    for removed in record.labels_removed.unwrap_or_default() {
        converted.labels_removed.push(LabelChange {
            message: message_ref(removed.message)?,
            label_ids: removed.label_ids.unwrap_or_default(),
        });
    }
    Ok(converted)
}

/// Maps a google-gmail1 error to a [`GmailError`], keeping the status and Google's reason.
fn convert_error(method: Method, error: google_gmail1::Error) -> GmailError {
    use google_gmail1::Error;
    let name = method.name();
    match error {
        Error::HttpError(error) => GmailError::Transport {
            method: name,
            detail: error_chain(&error),
        },
        Error::Io(error) => GmailError::Transport {
            method: name,
            detail: error.to_string(),
        },
        Error::BadRequest(body) => api_error(name, &body),
        Error::Failure(response) => GmailError::Api {
            method: name,
            status: response.status().as_u16(),
            reason: response
                .status()
                .canonical_reason()
                .unwrap_or("unknown")
                .to_owned(),
            message: "the response carried no JSON error".to_owned(),
        },
        Error::MissingToken(error) => {
            let transport = error
                .downcast_ref::<google_gmail1::yup_oauth2::Error>()
                .is_some_and(|error| {
                    matches!(error, google_gmail1::yup_oauth2::Error::HttpError(_))
                });
            if transport {
                GmailError::Transport {
                    method: name,
                    detail: format!("token endpoint: {}", error_chain(error.as_ref())),
                }
            } else {
                GmailError::Auth {
                    method: name,
                    detail: error.to_string().trim().to_owned(),
                }
            }
        }
        Error::JsonDecodeError(_, error) => GmailError::InvalidResponse {
            method: name,
            detail: error.to_string(),
        },
        other => GmailError::InvalidResponse {
            method: name,
            detail: other.to_string().trim().to_owned(),
        },
    }
}

/// Reads Google's JSON error shape `{"error": {"code", "message", "status", "errors":
/// [{"reason"}]}}`.
fn api_error(method: &'static str, body: &serde_json::Value) -> GmailError {
    let error = &body["error"];
    let status = error["code"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(400);
    let reason = error["errors"][0]["reason"]
        .as_str()
        .or_else(|| error["status"].as_str())
        .unwrap_or("unknown");
    let message = error["message"].as_str().unwrap_or("no message");
    GmailError::Api {
        method,
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_error_body_gives_status_and_reason() {
        let body = serde_json::json!({"error": {"code": 429, "message": "Too many requests",
            "status": "RESOURCE_EXHAUSTED",
            "errors": [{"reason": "rateLimitExceeded", "message": "Too many requests"}]}});
        let error = api_error("users.messages.get", &body);
        assert_eq!(error.status(), Some(429));
        assert!(error.is_transient());
        let text = error.to_string();
        assert!(text.contains("rateLimitExceeded"), "{text}");
    }

    #[test]
    fn google_error_without_errors_uses_status_name() {
        let body = serde_json::json!({"error": {"code": 404, "message": "Not Found",
            "status": "NOT_FOUND"}});
        let error = api_error("users.history.list", &body);
        assert_eq!(error.status(), Some(404));
        assert!(!error.is_transient());
        assert!(error.to_string().contains("NOT_FOUND"));
    }

    #[test]
    fn history_record_converts_label_changes() {
        let record: google_gmail1::api::History = serde_json::from_value(serde_json::json!({
            "id": "42",
            "labelsAdded": [{"message": {"id": "m1", "threadId": "t1",
                "labelIds": ["SPAM"]}, "labelIds": ["SPAM"]}],
            "messagesAdded": [{"message": {"id": "m2", "labelIds": ["INBOX"]}}]
        }))
        .unwrap();
        let converted = convert_record(record).unwrap();
        assert_eq!(converted.id, 42);
        assert_eq!(converted.labels_added[0].message.id, "m1");
        assert_eq!(converted.labels_added[0].label_ids, vec!["SPAM".to_owned()]);
        assert_eq!(converted.messages_added[0].id, "m2");
        assert!(converted.labels_removed.is_empty());
    }

    #[test]
    fn history_record_without_message_id_is_invalid() {
        let record: google_gmail1::api::History =
            serde_json::from_value(serde_json::json!({"id": "1",
                "messagesAdded": [{"message": {"threadId": "t"}}]}))
            .unwrap();
        assert!(matches!(
            convert_record(record),
            Err(GmailError::InvalidResponse { .. })
        ));
    }

    #[test]
    fn raw_message_debug_hides_body() {
        let message = RawMessage {
            id: "m1".into(),
            thread_id: "t1".into(),
            label_ids: vec![],
            internal_date_ms: 0,
            history_id: None,
            raw: b"Subject: private".to_vec(),
        };
        let debug_output = format!("{message:?}");
        assert!(!debug_output.contains("private"), "{debug_output}");
        assert!(debug_output.contains("raw_bytes: 16"), "{debug_output}");
    }
}

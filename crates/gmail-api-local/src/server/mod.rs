//! The HTTP layer: routes, shared state, the Google error shape and the request span.
//!
//! Handlers parse the request, lock the state briefly, call the pure logic in the crate's
//! other modules and render Gmail's JSON. They never hold a lock across an await.

mod control;
mod gmail;
mod json;
mod oauth;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::auth::Tokens;
use crate::error::Error;
use crate::faults::Faults;
use crate::mailbox::Mailboxes;
use crate::push::{PushEndpoint, Pusher};

/// Largest request body accepted, in bytes: room for a base64-encoded message of about
/// 48 MB in `/control/deliver`. Axum's default limit of 2 MB is too small for large mail.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Options of the server beyond the mailboxes.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Endpoint that receives Pub/Sub-style push notifications while a watch is active.
    pub push_endpoint: Option<PushEndpoint>,
    /// Sent as the `token` query parameter of every push.
    pub push_token: Option<String>,
}

/// One messages.modify or batchModify effect on one message, as `/control/modifications`
/// lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ModificationEntry {
    mailbox: String,
    message_id: String,
    method: &'static str,
    add_label_ids: Vec<String>,
    remove_label_ids: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

/// State shared by every handler.
pub(crate) struct AppState {
    mailboxes: Mutex<Mailboxes>,
    tokens: Mutex<Tokens>,
    faults: Mutex<Faults>,
    modifications: Mutex<Vec<ModificationEntry>>,
    requests: Mutex<BTreeMap<&'static str, u64>>,
    pusher: Option<Pusher>,
}

impl AppState {
    fn mailboxes(&self) -> MutexGuard<'_, Mailboxes> {
        lock(&self.mailboxes)
    }

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    /// Sends a push notification that `mailbox` changed up to `history_id`, when
    /// `should_push` (the watch matched the change) and a push endpoint is set. Called after
    /// the mailbox lock is released.
    fn notify(&self, mailbox: &str, history_id: u64, should_push: bool) {
        if let (true, Some(pusher)) = (should_push, &self.pusher) {
            pusher.notify(mailbox, history_id);
        }
    }
}

/// Locks a mutex, recovering from poisoning. Every critical section leaves the data
/// consistent before anything that could panic, so a panicked handler cannot half-write it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds the router over `mailboxes`. Push notifications need a Tokio runtime, so call it
/// from within one.
pub fn router(mailboxes: Mailboxes, options: ServerOptions) -> Router {
    let pusher = options
        .push_endpoint
        .map(|endpoint| Pusher::start(endpoint, options.push_token));
    let state = Arc::new(AppState {
        mailboxes: Mutex::new(mailboxes),
        tokens: Mutex::new(Tokens::default()),
        faults: Mutex::new(Faults::default()),
        modifications: Mutex::new(Vec::new()),
        requests: Mutex::new(BTreeMap::new()),
        pusher,
    });
    let users = "/gmail/v1/users/{user_id}";
    Router::new()
        .route(&format!("{users}/profile"), get(gmail::get_profile))
        .route(&format!("{users}/messages"), get(gmail::list_messages))
        .route(
            &format!("{users}/messages/batchModify"),
            post(gmail::batch_modify),
        )
        .route(&format!("{users}/messages/{{id}}"), get(gmail::get_message))
        .route(
            &format!("{users}/messages/{{id}}/modify"),
            post(gmail::modify_message),
        )
        .route(&format!("{users}/history"), get(gmail::list_history))
        .route(
            &format!("{users}/labels"),
            get(gmail::list_labels).post(gmail::create_label),
        )
        .route(&format!("{users}/labels/{{id}}"), get(gmail::get_label))
        .route(&format!("{users}/watch"), post(gmail::watch))
        .route(&format!("{users}/stop"), post(gmail::stop))
        .route("/o/oauth2/auth", get(oauth::authorize))
        .route("/token", post(oauth::token))
        .route("/control/deliver", post(control::deliver))
        .route(
            "/control/faults",
            get(control::get_faults).post(control::set_faults),
        )
        .route("/control/modifications", get(control::modifications))
        .route("/control/messages", get(control::messages))
        .route("/control/requests", get(control::requests))
        .route("/healthz", get(control::healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(request_span))
        .with_state(state)
}

/// Serves the local Gmail API on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Fails when the HTTP server fails.
pub async fn serve(
    listener: TcpListener,
    mailboxes: Mailboxes,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(mailboxes, options);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Wraps each request in a span named after its route template. The template, unlike the
/// path, carries no address, and the query string (which may hold a search) is left out.
async fn request_span(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "gmail_api_request",
        http.method = %request.method(),
        http.route = %route,
        http.status = tracing::field::Empty,
    );
    async move {
        let response = next.run(request).await;
        let status = response.status().as_u16();
        tracing::Span::current().record("http.status", status);
        tracing::debug!(status, "Sent response");
        response
    }
    .instrument(span)
    .await
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error_response(&Error::UnknownEndpoint {
        method: method.to_string(),
        path: uri.path().to_owned(),
    })
}

/// Renders an error in Google's JSON error shape, or the OAuth shape for token errors.
pub(crate) fn error_response(error: &Error) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match error {
        Error::OAuth { code, description } => serde_json::json!({
            "error": code,
            "error_description": description,
        }),
        _ => serde_json::json!({
            "error": {
                "code": status.as_u16(),
                "message": error.to_string(),
                "status": error.google_status(),
                "errors": [{
                    "message": error.to_string(),
                    "domain": "global",
                    "reason": reason(error),
                }],
            }
        }),
    };
    let mut response = json_response(StatusCode::OK, &body);
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
        );
    }
    response
}

/// Returns the legacy `errors[].reason` Gmail sends, which some clients match on.
fn reason(error: &Error) -> &'static str {
    match error {
        Error::RateLimitFault => "rateLimitExceeded",
        Error::BackendFault => "backendError",
        Error::Unauthenticated(_) => "authError",
        Error::PermissionDenied(_) => "forbidden",
        Error::LabelExists(_) => "duplicate",
        Error::InvalidQuery { .. } | Error::InvalidArgument { .. } | Error::InvalidLabel(_) => {
            "invalidArgument"
        }
        _ if error.http_status() == 404 => "notFound",
        _ => "internalError",
    }
}

/// Renders `value` as a JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        Body::from(value.to_string()),
    )
        .into_response()
}

/// The query parameters of a request, in order, with repeated names kept (Gmail repeats
/// `labelIds`, `historyTypes` and `metadataHeaders`).
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Self(pairs)
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn flag(&self, name: &'static str) -> Result<bool, Error> {
        match self.one(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(Error::invalid(name, other, "expected true or false")),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, Error> {
        self.one(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| Error::invalid(name, value, "expected a non-negative integer"))
            })
            .transpose()
    }
}

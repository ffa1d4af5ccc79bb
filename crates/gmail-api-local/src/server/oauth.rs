//! The OAuth 2.0 endpoints: `GET /o/oauth2/auth`, which approves at once and redirects with a
//! code, and `POST /token` for the authorization-code, refresh-token and JWT-bearer grants.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, Params, error_response, json_response};
use crate::auth::{DEFAULT_TOKEN_LIFETIME_S, IssuedToken, decode_jwt_claims};
use crate::error::Error;

/// The grant type of a service-account token request (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Approves the sign-in at once and redirects to `redirect_uri` with `code` and `state`. The
/// code acts for the mailbox named by `login_hint`, else for the default mailbox.
pub(super) async fn authorize(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref());
    let result = (|| {
        let redirect_uri = params
            .one("redirect_uri")
            .filter(|uri| !uri.is_empty())
            .ok_or_else(|| Error::OAuth {
                code: "invalid_request",
                description: "redirect_uri is required".to_owned(),
            })?;
        let mailbox = {
            let mailboxes = state.mailboxes();
            mailboxes
                .get(params.one("login_hint"))
                .map_err(|error| Error::OAuth {
                    code: "invalid_request",
                    description: format!("login_hint: {error}"),
                })?
                .email()
                .to_owned()
        };
        let code = state.tokens().issue_code(&mailbox);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("code", &code);
        if let Some(client_state) = params.one("state") {
            query.append_pair("state", client_state);
        }
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = format!("{redirect_uri}{separator}{}", query.finish());
        HeaderValue::from_str(&location).map_err(|_| Error::OAuth {
            code: "invalid_request",
            description: "redirect_uri contains characters not allowed in a header".to_owned(),
        })
    })();
    match result {
        Ok(location) => {
            tracing::info!("Approved a sign-in and redirected with a code");
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        Err(error) => error_response(&error),
    }
}

/// Issues tokens for the three supported grants.
pub(super) async fn token(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let params = Params::parse(Some(&String::from_utf8_lossy(&body)));
    match issue(&state, &params) {
        Ok(issued) => {
            let mut value = json!({
                "access_token": issued.access_token,
                "expires_in": issued.expires_in,
                "token_type": "Bearer",
            });
            if let Some(refresh_token) = issued.refresh_token {
                value["refresh_token"] = json!(refresh_token);
            }
            if let Some(scope) = params.one("scope") {
                value["scope"] = json!(scope);
            }
            json_response(StatusCode::OK, &value)
        }
        Err(error) => error_response(&error),
    }
}

fn issue(state: &AppState, params: &Params) -> Result<IssuedToken, Error> {
    let lifetime_s = state
        .faults()
        .token_expires_in
        .unwrap_or(DEFAULT_TOKEN_LIFETIME_S);
    let now_ms = spamflow_runtime::now_ms();
    let required = |name: &'static str| {
        params.one(name).ok_or_else(|| Error::OAuth {
            code: "invalid_request",
            description: format!("{name} is required for this grant_type"),
        })
    };
    let grant_type = required("grant_type")?;
    let issued = match grant_type {
        "authorization_code" => {
            state
                .tokens()
                .exchange_code(required("code")?, now_ms, lifetime_s)?
        }
        "refresh_token" => {
            state
                .tokens()
                .refresh(required("refresh_token")?, now_ms, lifetime_s)?
        }
        JWT_BEARER => {
            let claims = decode_jwt_claims(required("assertion")?)?;
            let mailbox = {
                let mailboxes = state.mailboxes();
                mailboxes
                    .get(claims.sub.as_deref())
                    .map_err(|error| Error::OAuth {
                        code: "invalid_grant",
                        description: format!("JWT sub: {error}"),
                    })?
                    .email()
                    .to_owned()
            };
            state.tokens().issue_access(&mailbox, now_ms, lifetime_s)
        }
        other => {
            return Err(Error::OAuth {
                code: "unsupported_grant_type",
                description: format!(
                    "grant_type {other:?} is not supported; use authorization_code, \
                     refresh_token or {JWT_BEARER}"
                ),
            });
        }
    };
    tracing::info!(
        grant_type,
        expires_in = issued.expires_in,
        "Issued an access token"
    );
    Ok(issued)
}

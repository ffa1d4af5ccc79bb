//! OAuth 2.0 stand-in: authorization codes, access and refresh tokens, and the claims of a
//! service-account JWT. Time is passed in, so this module does no I/O.
//!
//! NOTE: scopes are recorded nowhere and not enforced, and JWT signatures are not checked.
//! This is a local test server, never an authorization boundary.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::Error;

/// Default access token lifetime in seconds, as Google's.
pub const DEFAULT_TOKEN_LIFETIME_S: u64 = 3600;

/// A token response of `POST /token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    /// Only the authorization-code grant returns a refresh token.
    pub refresh_token: Option<String>,
}

#[derive(Debug, Clone)]
struct AccessGrant {
    mailbox: String,
    expires_at_ms: i64,
}

/// Every code and token issued by this server, with the mailbox each acts for.
#[derive(Debug, Default)]
pub struct Tokens {
    codes: HashMap<String, String>,
    refresh: HashMap<String, String>,
    access: HashMap<String, AccessGrant>,
}

impl Tokens {
    /// Issues a one-time authorization code for `mailbox`.
    pub fn issue_code(&mut self, mailbox: &str) -> String {
        let code = random_token("4/local-");
        self.codes.insert(code.clone(), mailbox.to_owned());
        code
    }

    /// Exchanges an authorization code for an access and a refresh token.
    ///
    /// # Errors
    ///
    /// `invalid_grant` for an unknown or already used code.
    pub fn exchange_code(
        &mut self,
        code: &str,
        now_ms: i64,
        lifetime_s: u64,
    ) -> Result<IssuedToken, Error> {
        let mailbox = self.codes.remove(code).ok_or_else(|| Error::OAuth {
            code: "invalid_grant",
            description: "the authorization code is unknown or was already used; \
                          start again at /o/oauth2/auth"
                .to_owned(),
        })?;
        let refresh_token = random_token("1//local-");
        self.refresh.insert(refresh_token.clone(), mailbox.clone());
        let mut issued = self.issue_access(&mailbox, now_ms, lifetime_s);
        issued.refresh_token = Some(refresh_token);
        Ok(issued)
    }

    /// Issues a new access token for the mailbox of a refresh token.
    ///
    /// # Errors
    ///
    /// `invalid_grant` for an unknown refresh token.
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        now_ms: i64,
        lifetime_s: u64,
    ) -> Result<IssuedToken, Error> {
        let mailbox = self
            .refresh
            .get(refresh_token)
            .cloned()
            .ok_or_else(|| Error::OAuth {
                code: "invalid_grant",
                description: "the refresh token is unknown to this server (it forgets tokens \
                              on restart); sign in again"
                    .to_owned(),
            })?;
        Ok(self.issue_access(&mailbox, now_ms, lifetime_s))
    }

    /// Issues an access token for `mailbox` without a refresh token, as for a service
    /// account.
    pub fn issue_access(&mut self, mailbox: &str, now_ms: i64, lifetime_s: u64) -> IssuedToken {
        self.access.retain(|_, grant| grant.expires_at_ms > now_ms);
        let access_token = random_token("ya29.local-");
        let lifetime_ms = i64::try_from(lifetime_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                mailbox: mailbox.to_owned(),
                expires_at_ms: now_ms.saturating_add(lifetime_ms),
            },
        );
        IssuedToken {
            access_token,
            expires_in: lifetime_s,
            refresh_token: None,
        }
    }

    /// Returns the mailbox an access token acts for.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthenticated`] for an unknown or expired token.
    pub fn mailbox_for(&self, access_token: &str, now_ms: i64) -> Result<&str, Error> {
        let grant = self.access.get(access_token).ok_or(Error::Unauthenticated(
            "the access token was not issued by this server",
        ))?;
        if grant.expires_at_ms <= now_ms {
            return Err(Error::Unauthenticated(
                "the access token has expired; refresh it",
            ));
        }
        Ok(&grant.mailbox)
    }
}

/// The claims of a service-account JWT that this server reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct JwtClaims {
    /// The service account's address.
    pub iss: String,
    /// The mailbox to act for (domain-wide delegation); absent means the default mailbox.
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Decodes the claims (the middle part) of a JWT without checking its signature.
///
/// # Errors
///
/// `invalid_grant` when the assertion is not three dot-separated parts, or its claims are not
/// base64url JSON with an `iss` string.
pub fn decode_jwt_claims(assertion: &str) -> Result<JwtClaims, Error> {
    let invalid = |reason: String| Error::OAuth {
        code: "invalid_grant",
        description: format!("invalid JWT assertion: {reason}"),
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let [_, claims, _] = parts.as_slice() else {
        return Err(invalid(format!(
            "expected 3 dot-separated parts, found {}",
            parts.len()
        )));
    };
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .map_err(|error| invalid(format!("claims are not base64url: {error}")))?;
    serde_json::from_slice(&json).map_err(|error| invalid(format!("claims are not valid: {error}")))
}

/// Returns `prefix` followed by 32 hex digits from the standard library's randomly keyed
/// SipHash, which is seeded from the operating system. Unpredictable enough for a local
/// test server, not for real credentials.
fn random_token(prefix: &str) -> String {
    let mut token = prefix.to_owned();
    for part in 0..2u64 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(part);
        token.push_str(&format!("{:016x}", hasher.finish()));
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_and_tokens_expire() {
        let mut tokens = Tokens::default();
        let code = tokens.issue_code("me@example.com");
        let issued = tokens.exchange_code(&code, 0, 10).expect("exchange");
        assert_eq!(issued.expires_in, 10);
        assert!(matches!(
            tokens.exchange_code(&code, 0, 10),
            Err(Error::OAuth {
                code: "invalid_grant",
                ..
            })
        ));
        assert_eq!(
            tokens
                .mailbox_for(&issued.access_token, 9_999)
                .expect("valid"),
            "me@example.com"
        );
        assert!(matches!(
            tokens.mailbox_for(&issued.access_token, 10_000),
            Err(Error::Unauthenticated(_))
        ));
        let refresh_token = issued.refresh_token.expect("refresh token");
        let refreshed = tokens.refresh(&refresh_token, 10_000, 10).expect("refresh");
        assert_ne!(refreshed.access_token, issued.access_token);
        assert!(tokens.mailbox_for(&refreshed.access_token, 10_001).is_ok());
        assert!(tokens.refresh("1//unknown", 0, 10).is_err());
        assert!(tokens.mailbox_for("ya29.unknown", 0).is_err());
    }

    #[test]
    fn jwt_claims_decode_without_signature_check() {
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let assertion = format!(
            "{}.{}.signature",
            encode(r#"{"alg":"RS256"}"#),
            encode(
                r#"{"iss":"sa@p.iam.gserviceaccount.com","sub":"alice@example.com","scope":"x"}"#
            )
        );
        let claims = decode_jwt_claims(&assertion).expect("decode");
        assert_eq!(claims.sub.as_deref(), Some("alice@example.com"));
        assert!(decode_jwt_claims("one.two").is_err());
        assert!(decode_jwt_claims("a.!!!.c").is_err());
        assert!(decode_jwt_claims(&format!("a.{}.c", encode(r#"{"sub":"x"}"#))).is_err());
    }
}

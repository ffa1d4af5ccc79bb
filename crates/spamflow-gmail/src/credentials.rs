//! Credentials files and how their kind is detected: Google Cloud writes an OAuth client
//! as `{"installed": {...}}` and a service account key as `{"type": "service_account", ...}`.

use std::fmt;
use std::path::{Path, PathBuf};

use google_gmail1::yup_oauth2::{ApplicationSecret, ServiceAccountKey};

use crate::error::GmailError;

/// The kind of a credentials file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsKind {
    /// An OAuth client of type Desktop app, used with the installed-app flow.
    InstalledApp,
    /// A service account key, used with domain-wide delegation.
    ServiceAccount,
}

/// Parsed credentials. `Debug` shows the kind and the source file, never a secret.
#[derive(Clone)]
pub enum Credentials {
    /// An OAuth client secret of a Desktop app.
    InstalledApp {
        /// The file it was read from.
        path: PathBuf,
        /// The client id, secret and endpoints.
        secret: Box<ApplicationSecret>,
    },
    /// A service account key.
    ServiceAccount {
        /// The file it was read from.
        path: PathBuf,
        /// The key, including the private key.
        key: Box<ServiceAccountKey>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("kind", &self.kind())
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads and parses a credentials file.
    ///
    /// # Errors
    ///
    /// [`GmailError::Credentials`] when the file cannot be read or is of no known kind.
    pub fn read(path: &Path) -> Result<Self, GmailError> {
        let text = std::fs::read_to_string(path).map_err(|error| GmailError::Credentials {
            path: path.to_owned(),
            detail: format!("failed to read it: {error}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses credentials JSON; `path` only names the source in errors.
    ///
    /// # Errors
    ///
    /// [`GmailError::Credentials`] when the JSON is invalid, is a web client, or is neither
    /// an installed-app client nor a service account key.
    pub fn parse(text: &str, path: &Path) -> Result<Self, GmailError> {
        let invalid = |detail: String| GmailError::Credentials {
            path: path.to_owned(),
            detail,
        };
        // serde_json errors give a line and column, never the content around them.
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| invalid(format!("it is not valid JSON ({error})")))?;
        let Some(object) = value.as_object() else {
            return Err(invalid("expected a JSON object".to_owned()));
        };

        if let Some(installed) = object.get("installed") {
            let secret: ApplicationSecret = serde_json::from_value(installed.clone())
                .map_err(|error| invalid(format!("invalid \"installed\" client ({error})")))?;
            if secret.client_id.is_empty() || secret.token_uri.is_empty() {
                return Err(invalid(
                    "the \"installed\" client needs client_id and token_uri".to_owned(),
                ));
            }
            return Ok(Credentials::InstalledApp {
                path: path.to_owned(),
                secret: Box::new(secret),
            });
        }
        if object.contains_key("web") {
            return Err(invalid(
                "it holds a \"web\" OAuth client; create an OAuth client of type Desktop app \
                 instead"
                    .to_owned(),
            ));
        }
        match object.get("type").and_then(|kind| kind.as_str()) {
            Some("service_account") => {
                let key: ServiceAccountKey = serde_json::from_value(value.clone())
                    .map_err(|error| invalid(format!("invalid service account key ({error})")))?;
                if key.client_email.is_empty() || key.token_uri.is_empty() {
                    return Err(invalid(
                        "the service account key needs client_email and token_uri".to_owned(),
                    ));
                }
                Ok(Credentials::ServiceAccount {
                    path: path.to_owned(),
                    key: Box::new(key),
                })
            }
            Some(other) => Err(invalid(format!(
                "unsupported credentials type {other:?}; expected \"service_account\" or an \
                 \"installed\" OAuth client"
            ))),
            None => Err(invalid(
                "expected an OAuth client secret with an \"installed\" object or a service \
                 account key with \"type\": \"service_account\""
                    .to_owned(),
            )),
        }
    }

    /// Returns the kind of these credentials.
    pub fn kind(&self) -> CredentialsKind {
        match self {
            Credentials::InstalledApp { .. } => CredentialsKind::InstalledApp,
            Credentials::ServiceAccount { .. } => CredentialsKind::ServiceAccount,
        }
    }

    /// Returns the file these credentials were read from.
    pub fn path(&self) -> &Path {
        match self {
            Credentials::InstalledApp { path, .. } | Credentials::ServiceAccount { path, .. } => {
                path
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = r#"{"installed":{"client_id":"id-123.apps.example",
        "client_secret":"very-secret-value","auth_uri":"http://127.0.0.1:1/o/oauth2/auth",
        "token_uri":"http://127.0.0.1:1/token","redirect_uris":["http://localhost"]}}"#;
    const SERVICE_ACCOUNT: &str = r#"{"type":"service_account","project_id":"p",
        "private_key_id":"k1","private_key":"-----BEGIN PRIVATE KEY-----\nsecret-key-body\n-----END PRIVATE KEY-----\n",
        "client_email":"spamflow@p.iam.gserviceaccount.com","client_id":"42",
        "token_uri":"http://127.0.0.1:1/token"}"#;

    fn parse(text: &str) -> Result<Credentials, GmailError> {
        Credentials::parse(text, Path::new("creds.json"))
    }

    #[test]
    fn detects_installed_app_client() {
        let credentials = parse(INSTALLED).unwrap();
        assert_eq!(credentials.kind(), CredentialsKind::InstalledApp);
    }

    #[test]
    fn detects_service_account_key() {
        let credentials = parse(SERVICE_ACCOUNT).unwrap();
        assert_eq!(credentials.kind(), CredentialsKind::ServiceAccount);
    }

    #[test]
    fn debug_output_hides_secrets() {
        for text in [INSTALLED, SERVICE_ACCOUNT] {
            let debug_output = format!("{:?}", parse(text).unwrap());
            assert!(!debug_output.contains("secret-value"), "{debug_output}");
            assert!(!debug_output.contains("secret-key-body"), "{debug_output}");
            assert!(debug_output.contains("creds.json"), "{debug_output}");
        }
    }

    #[test]
    fn web_client_is_rejected_with_advice() {
        let message = parse(r#"{"web":{"client_id":"x"}}"#)
            .unwrap_err()
            .to_string();
        assert!(message.contains("Desktop app"), "{message}");
    }

    #[test]
    fn unknown_type_is_named() {
        let message = parse(r#"{"type":"authorized_user"}"#)
            .unwrap_err()
            .to_string();
        assert!(message.contains("authorized_user"), "{message}");
    }

    #[test]
    fn invalid_json_error_hides_content() {
        let message = parse("{\"installed\": very-secret-value")
            .unwrap_err()
            .to_string();
        assert!(message.contains("creds.json"), "{message}");
        assert!(!message.contains("very-secret-value"), "{message}");
    }

    #[test]
    fn missing_fields_are_reported() {
        let message = parse(r#"{"type":"service_account","client_email":"a@b.c"}"#)
            .unwrap_err()
            .to_string();
        assert!(message.contains("service account key"), "{message}");
    }

    #[test]
    fn missing_file_is_named() {
        let error = Credentials::read(Path::new("/nonexistent/creds.json")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/creds.json"));
    }
}

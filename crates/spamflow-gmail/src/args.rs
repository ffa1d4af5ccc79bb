//! The `--gmail-*` flags every Gmail-facing service flattens into its own arguments.

use std::path::PathBuf;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::GmailError;

/// Google's production Gmail API root.
pub const DEFAULT_API_URL: &str = "https://gmail.googleapis.com/";
/// The narrowest scope that both reads mail and changes labels.
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/gmail.modify";

/// Gmail connection settings: API URL, credentials, mailboxes, quota and retries.
#[derive(Debug, Clone, clap::Args)]
pub struct GmailArgs {
    /// Root URL of the Gmail API; calls go to `<url>gmail/v1/users/...`. Point it at the
    /// local Gmail API for tests and demos.
    #[arg(long = "gmail-api-url", env = "SPAMFLOW_GMAIL_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// OAuth client secret JSON (an `installed` Desktop app client) or service account key
    /// JSON (`"type": "service_account"`); the kind is detected from the content.
    #[arg(
        long = "gmail-credentials-file",
        env = "SPAMFLOW_GMAIL_CREDENTIALS_FILE"
    )]
    pub credentials_file: Option<PathBuf>,
    /// Token cache of the installed-app flow, written owner-only (0600) by `auth` and
    /// refreshed in place.
    #[arg(long = "gmail-token-file", env = "SPAMFLOW_GMAIL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Mailbox addresses, comma-separated. With installed-app credentials, this is the one
    /// signed-in mailbox, read from the profile when empty. With a service account, these are
    /// the mailboxes it acts for through domain-wide delegation.
    #[arg(
        long = "gmail-mailboxes",
        env = "SPAMFLOW_GMAIL_MAILBOXES",
        value_delimiter = ','
    )]
    pub mailboxes: Vec<String>,
    /// Quota units per second each mailbox may spend (Gmail's per-user limit is 250).
    #[arg(
        long = "gmail-quota-units-per-second",
        env = "SPAMFLOW_GMAIL_QUOTA_UNITS_PER_SECOND",
        default_value_t = 250,
        value_parser = spamflow_runtime::cli::whole_number_from(0u32)
    )]
    pub quota_units_per_second: u32,
    /// OAuth scope requested for every call.
    #[arg(long = "gmail-scope", env = "SPAMFLOW_GMAIL_SCOPE", default_value = DEFAULT_SCOPE)]
    pub scope: String,
    /// Attempts per Gmail call, the first included, before a retryable error is returned.
    #[arg(
        long = "gmail-max-attempts",
        env = "SPAMFLOW_GMAIL_MAX_ATTEMPTS",
        default_value_t = 6,
        value_parser = spamflow_runtime::cli::whole_number_from(0u32)
    )]
    pub max_attempts: u32,
    /// Backoff before the first retry, in milliseconds; it doubles per retry, with full
    /// jitter.
    #[arg(
        long = "gmail-retry-base-ms",
        env = "SPAMFLOW_GMAIL_RETRY_BASE_MS",
        default_value_t = 500,
        value_parser = spamflow_runtime::cli::whole_number_from(0u64)
    )]
    pub retry_base_ms: u64,
    /// Upper bound of one backoff delay, in milliseconds.
    #[arg(
        long = "gmail-retry-max-ms",
        env = "SPAMFLOW_GMAIL_RETRY_MAX_MS",
        default_value_t = 32_000,
        value_parser = spamflow_runtime::cli::whole_number_from(0u64)
    )]
    pub retry_max_ms: u64,
    /// Timeout of one HTTP request to Gmail or the token endpoint, in milliseconds.
    #[arg(
        long = "gmail-request-timeout-ms",
        env = "SPAMFLOW_GMAIL_REQUEST_TIMEOUT_MS",
        default_value_t = 30_000,
        value_parser = spamflow_runtime::cli::whole_number_from(0u64)
    )]
    pub request_timeout_ms: u64,
}

impl GmailArgs {
    /// Settings for the API at `api_url` with `credentials_file`, defaults elsewhere, for
    /// tests and tools.
    pub fn for_api(api_url: &str, credentials_file: PathBuf) -> Self {
        Self {
            api_url: api_url.to_owned(),
            credentials_file: Some(credentials_file),
            token_file: None,
            mailboxes: Vec::new(),
            quota_units_per_second: 250,
            scope: DEFAULT_SCOPE.to_owned(),
            max_attempts: 6,
            retry_base_ms: 500,
            retry_max_ms: 32_000,
            request_timeout_ms: 30_000,
        }
    }

    /// Returns the API root URL with exactly one trailing slash, which google-gmail1 expects
    /// because it appends `gmail/v1/...` to it.
    ///
    /// # Errors
    ///
    /// [`GmailError::Config`] when the URL is not http or https.
    pub fn normalized_api_url(&self) -> Result<String, GmailError> {
        let url = self.api_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 9 {
            return Err(GmailError::Config(format!(
                "invalid --gmail-api-url {url:?}: expected an http:// or https:// URL such as \
                 {DEFAULT_API_URL}"
            )));
        }
        Ok(format!("{}/", url.trim_end_matches('/')))
    }

    /// Returns the mailbox addresses, trimmed and without empty entries.
    ///
    /// # Errors
    ///
    /// [`GmailError::Config`] when an entry is not an email address.
    pub fn mailbox_list(&self) -> Result<Vec<String>, GmailError> {
        let mut mailboxes = Vec::new();
        for entry in &self.mailboxes {
            let address = entry.trim();
            if address.is_empty() {
                continue;
            }
            let valid = address
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
            if !valid {
                return Err(GmailError::Config(format!(
                    "invalid mailbox {address:?} in --gmail-mailboxes: expected an email \
                     address such as me@example.com"
                )));
            }
            if !mailboxes
                .iter()
                .any(|known: &String| known.eq_ignore_ascii_case(address))
            {
                mailboxes.push(address.to_owned());
            }
        }
        Ok(mailboxes)
    }

    /// Returns the retry backoff these settings describe.
    ///
    /// # Errors
    ///
    /// [`GmailError::Config`] when the delays or attempts are zero or inconsistent.
    pub fn backoff(&self) -> Result<Backoff, GmailError> {
        if self.max_attempts == 0 {
            return Err(GmailError::Config(
                "invalid --gmail-max-attempts 0: at least one attempt is needed".to_owned(),
            ));
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err(GmailError::Config(format!(
                "invalid retry delays: --gmail-retry-base-ms {} must be above 0 and at most \
                 --gmail-retry-max-ms {}",
                self.retry_base_ms, self.retry_max_ms
            )));
        }
        Ok(Backoff::new(
            Duration::from_millis(self.retry_base_ms),
            Duration::from_millis(self.retry_max_ms),
            self.max_attempts,
        ))
    }

    /// Checks the quota and timeout settings.
    ///
    /// # Errors
    ///
    /// [`GmailError::Config`] naming the flag that is zero.
    pub fn check_limits(&self) -> Result<(), GmailError> {
        if self.quota_units_per_second == 0 {
            return Err(GmailError::Config(
                "invalid --gmail-quota-units-per-second 0: it must be at least 1".to_owned(),
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(GmailError::Config(
                "invalid --gmail-request-timeout-ms 0: it must be at least 1".to_owned(),
            ));
        }
        if self.scope.trim().is_empty() {
            return Err(GmailError::Config(
                "invalid --gmail-scope: it must not be empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks every Gmail flag before a service starts: the limits, the API URL, the retry
    /// settings, the mailbox list, and the credentials file, which it reads to learn its kind.
    /// A service account key also needs the mailboxes it acts for.
    ///
    /// # Errors
    ///
    /// A [`GmailError`] naming the flag and the value at fault.
    pub fn check(&self) -> Result<(), GmailError> {
        self.check_limits()?;
        self.normalized_api_url()?;
        self.backoff()?;
        let mailboxes = self.mailbox_list()?;
        let Some(credentials_file) = &self.credentials_file else {
            return Err(GmailError::Config(
                "missing --gmail-credentials-file (SPAMFLOW_GMAIL_CREDENTIALS_FILE): give an \
                 OAuth client secret JSON of a Desktop app or a service account key JSON"
                    .to_owned(),
            ));
        };
        let credentials = crate::Credentials::read(credentials_file)?;
        if credentials.kind() == crate::CredentialsKind::ServiceAccount && mailboxes.is_empty() {
            return Err(GmailError::Config(
                "missing --gmail-mailboxes (SPAMFLOW_GMAIL_MAILBOXES): a service account key \
                 needs the addresses it acts for"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_args() -> GmailArgs {
        GmailArgs::for_api("http://127.0.0.1:8085", PathBuf::from("/nonexistent"))
    }

    #[test]
    fn api_url_gets_one_trailing_slash() {
        let mut args = local_args();
        assert_eq!(args.normalized_api_url().unwrap(), "http://127.0.0.1:8085/");
        args.api_url = "https://gmail.googleapis.com//".to_owned();
        assert_eq!(args.normalized_api_url().unwrap(), DEFAULT_API_URL);
    }

    #[test]
    fn api_url_without_scheme_is_rejected() {
        let mut args = local_args();
        args.api_url = "127.0.0.1:8085".to_owned();
        let message = args.normalized_api_url().unwrap_err().to_string();
        assert!(message.contains("--gmail-api-url"), "{message}");
    }

    #[test]
    fn mailbox_list_trims_and_deduplicates() {
        let mut args = local_args();
        args.mailboxes = vec![" a@example.com".into(), "".into(), "A@example.com".into()];
        assert_eq!(
            args.mailbox_list().unwrap(),
            vec!["a@example.com".to_owned()]
        );
    }

    #[test]
    fn mailbox_list_rejects_non_address() {
        let mut args = local_args();
        args.mailboxes = vec!["not-an-address".into()];
        let message = args.mailbox_list().unwrap_err().to_string();
        assert!(message.contains("not-an-address"), "{message}");
    }

    #[test]
    fn zero_quota_and_attempts_are_rejected() {
        let mut args = local_args();
        args.quota_units_per_second = 0;
        assert!(args.check_limits().is_err());
        let mut args = local_args();
        args.max_attempts = 0;
        assert!(args.backoff().is_err());
    }
}

//! [`GmailPool`]: the clients of every configured mailbox, built from [`GmailArgs`].

use std::sync::Arc;
use std::time::Duration;

use crate::args::GmailArgs;
use crate::auth;
use crate::client::Gmail;
use crate::credentials::{Credentials, CredentialsKind};
use crate::error::GmailError;

/// One [`Gmail`] client per mailbox. A service account gets one authenticator per mailbox
/// (each token acts for its mailbox through domain-wide delegation); installed-app
/// credentials serve the one signed-in mailbox.
#[derive(Debug, Clone)]
pub struct GmailPool {
    kind: CredentialsKind,
    clients: Vec<Arc<Gmail>>,
}

impl GmailPool {
    /// Reads the credentials and builds a client per mailbox. With installed-app credentials
    /// and no `--gmail-mailboxes`, it reads the profile to learn the address.
    ///
    /// # Errors
    ///
    /// [`GmailError::Config`] for missing or invalid flags, [`GmailError::Credentials`] and
    /// [`GmailError::TokenFile`] for unusable files, and any error of the profile call.
    pub async fn connect(args: &GmailArgs) -> Result<Self, GmailError> {
        args.check_limits()?;
        args.normalized_api_url()?;
        args.backoff()?;
        let mailboxes = args.mailbox_list()?;
        let Some(credentials_file) = &args.credentials_file else {
            return Err(GmailError::Config(
                "missing --gmail-credentials-file (SPAMFLOW_GMAIL_CREDENTIALS_FILE): an OAuth \
                 client secret JSON of a Desktop app or a service account key JSON"
                    .to_owned(),
            ));
        };
        let credentials = Credentials::read(credentials_file)?;
        let timeout = Duration::from_millis(args.request_timeout_ms);
        let connector = auth::connector()?;

        let clients = match &credentials {
            Credentials::ServiceAccount { key, .. } => {
                if mailboxes.is_empty() {
                    return Err(GmailError::Config(
                        "missing --gmail-mailboxes (SPAMFLOW_GMAIL_MAILBOXES): a service \
                         account needs the addresses it acts for"
                            .to_owned(),
                    ));
                }
                let mut clients = Vec::with_capacity(mailboxes.len());
                for mailbox in &mailboxes {
                    let auth =
                        auth::service_account(key, mailbox, connector.clone(), timeout).await?;
                    clients.push(Arc::new(Gmail::with_auth(
                        args,
                        mailbox,
                        auth,
                        connector.clone(),
                    )?));
                }
                clients
            }
            Credentials::InstalledApp { secret, .. } => {
                if mailboxes.len() > 1 {
                    return Err(GmailError::Config(format!(
                        "--gmail-mailboxes names {} mailboxes, but a Desktop app client signs \
                         in to one; use a service account for several",
                        mailboxes.len()
                    )));
                }
                let Some(token_file) = &args.token_file else {
                    return Err(GmailError::Config(
                        "missing --gmail-token-file (SPAMFLOW_GMAIL_TOKEN_FILE): the token \
                         cache that `gmail-integration auth` writes"
                            .to_owned(),
                    ));
                };
                let auth =
                    auth::installed_app(secret, token_file, connector.clone(), timeout).await?;
                let mut client = Gmail::with_auth(args, "me", auth, connector)?;
                match mailboxes.first() {
                    Some(mailbox) => client.set_mailbox(mailbox),
                    None => {
                        let profile = client.profile().await?;
                        client.set_mailbox(&profile.email_address);
                    }
                }
                vec![Arc::new(client)]
            }
        };
        tracing::info!(
            kind = ?credentials.kind(),
            mailboxes = clients.len(),
            "Gmail clients ready"
        );
        Ok(Self {
            kind: credentials.kind(),
            clients,
        })
    }

    /// Returns the kind of credentials the clients use.
    pub fn kind(&self) -> CredentialsKind {
        self.kind
    }

    /// Returns the client of `mailbox` (compared case-insensitively), if it is configured.
    pub fn get(&self, mailbox: &str) -> Option<Arc<Gmail>> {
        self.clients
            .iter()
            .find(|client| client.mailbox().eq_ignore_ascii_case(mailbox.trim()))
            .cloned()
    }

    /// Returns every client, in the order of `--gmail-mailboxes`.
    pub fn clients(&self) -> &[Arc<Gmail>] {
        &self.clients
    }
}

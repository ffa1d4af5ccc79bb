//! Access tokens through yup-oauth2: the installed-app flow with a token cache file
//! ([`TokenFile`], replaced atomically), and
//! service accounts acting for one mailbox each through domain-wide delegation.
//!
//! Services never start the interactive flow. Without a usable token in the cache they fail
//! with advice to run the one-time sign-in ([`sign_in`]) instead of waiting for a browser.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use google_gmail1::hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use google_gmail1::hyper_util::client::legacy::Client;
use google_gmail1::hyper_util::client::legacy::connect::HttpConnector;
use google_gmail1::hyper_util::rt::TokioExecutor;
use google_gmail1::yup_oauth2::authenticator::Authenticator;
use google_gmail1::yup_oauth2::authenticator_delegate::InstalledFlowDelegate;
use google_gmail1::yup_oauth2::{
    self, ApplicationSecret, CustomHyperClientBuilder, HyperClientBuilder,
    InstalledFlowAuthenticator, InstalledFlowReturnMethod, ServiceAccountAuthenticator,
    ServiceAccountKey,
};

use crate::args::GmailArgs;
use crate::credentials::Credentials;
use crate::error::GmailError;
use crate::token_file::TokenFile;

/// The connector every Gmail and token request goes through: HTTPS with the system's root
/// certificates, and plain HTTP for a local Gmail API.
pub(crate) type Connector = HttpsConnector<HttpConnector>;

/// The authenticator type the hubs use.
pub(crate) type Auth = Authenticator<Connector>;

/// Builds the shared connector.
pub(crate) fn connector() -> Result<Connector, GmailError> {
    let builder = HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|error| {
            GmailError::Config(format!(
                "failed to load the system's root CA certificates for HTTPS to Gmail \
                 ({error}); install the ca-certificates package"
            ))
        })?;
    Ok(builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build())
}

fn token_client(connector: Connector, timeout: Duration) -> CustomHyperClientBuilder<Connector> {
    let client = Client::builder(TokioExecutor::new()).build::<_, String>(connector);
    CustomHyperClientBuilder::from(client).with_timeout(timeout)
}

/// Builds the authenticator of a service account acting for `mailbox`.
pub(crate) async fn service_account(
    key: &ServiceAccountKey,
    mailbox: &str,
    connector: Connector,
    timeout: Duration,
) -> Result<Auth, GmailError> {
    ServiceAccountAuthenticator::with_client(key.clone(), token_client(connector, timeout))
        .subject(mailbox)
        .build()
        .await
        .map_err(|error| {
            GmailError::Config(format!(
                "failed to set up the service account for a mailbox: {error}; check private_key in \
             the credentials file"
            ))
        })
}

/// Builds the installed-app authenticator of a service, which refreshes the cached token
/// and fails (instead of prompting) when the cache contains none.
pub(crate) async fn installed_app(
    secret: &ApplicationSecret,
    token_file: &Path,
    connector: Connector,
    timeout: Duration,
) -> Result<Auth, GmailError> {
    let cached = std::fs::metadata(token_file)
        .map(|metadata| metadata.len() > 2)
        .unwrap_or(false);
    if !cached {
        return Err(GmailError::TokenFile {
            path: token_file.to_owned(),
            detail: "it is missing or holds no token; sign in once with `gmail-integration \
                     auth` using the same --gmail-credentials-file and --gmail-token-file"
                .to_owned(),
        });
    }
    secure_token_file(token_file)?;
    let storage = TokenFile::open(token_file)?;
    // The Interactive method requests a code from the delegate, and NoPrompt returns an
    // error, so a revoked refresh token fails the call instead of blocking the service.
    InstalledFlowAuthenticator::with_client(
        secret.clone(),
        InstalledFlowReturnMethod::Interactive,
        token_client(connector, timeout),
    )
    .with_storage(Box::new(storage))
    .flow_delegate(Box::new(NoPrompt))
    .build()
    .await
    .map_err(|error| GmailError::TokenFile {
        path: token_file.to_owned(),
        detail: format!("failed to load it: {error}"),
    })
}

/// Restricts an existing token file to its owner (0600). yup-oauth2 creates the file with
/// that mode but keeps the mode of a file that already exists.
///
/// # Errors
///
/// [`GmailError::TokenFile`] when the mode cannot be set.
pub fn secure_token_file(path: &Path) -> Result<(), GmailError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |error| GmailError::TokenFile {
                    path: path.to_owned(),
                    detail: format!("failed to make it owner-only (0600): {error}"),
                },
            )?;
        }
    }
    Ok(())
}

/// Runs the one-time installed-app sign-in: prints the consent URL on stdout (one line),
/// waits on a loopback port for the browser's redirect, exchanges the code and writes the
/// token cache owner-only. Returns the signed-in mailbox address.
///
/// # Errors
///
/// Any [`GmailError`] of the credentials, the token exchange or the profile lookup; a
/// service account key needs no sign-in and is rejected.
pub async fn sign_in(args: &GmailArgs, redirect_port: Option<u16>) -> Result<String, GmailError> {
    args.check_limits()?;
    let Some(credentials_file) = &args.credentials_file else {
        return Err(GmailError::Config(
            "missing --gmail-credentials-file (SPAMFLOW_GMAIL_CREDENTIALS_FILE): the OAuth \
             client secret JSON of a Desktop app"
                .to_owned(),
        ));
    };
    let Some(token_file) = &args.token_file else {
        return Err(GmailError::Config(
            "missing --gmail-token-file (SPAMFLOW_GMAIL_TOKEN_FILE): where to cache the token"
                .to_owned(),
        ));
    };
    let secret = match Credentials::read(credentials_file)? {
        Credentials::InstalledApp { secret, .. } => *secret,
        Credentials::ServiceAccount { path, .. } => {
            return Err(GmailError::Credentials {
                path,
                detail: "it is a service account key, which needs no sign-in".to_owned(),
            });
        }
    };
    if let Some(parent) = token_file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|error| GmailError::TokenFile {
            path: token_file.clone(),
            detail: format!("failed to create its folder: {error}"),
        })?;
    }
    secure_token_file(token_file)?;
    let storage = TokenFile::open(token_file)?;

    let timeout = Duration::from_millis(args.request_timeout_ms);
    let method = match redirect_port {
        Some(port) => InstalledFlowReturnMethod::HTTPPortRedirect(port),
        None => InstalledFlowReturnMethod::HTTPRedirect,
    };
    let auth = InstalledFlowAuthenticator::with_client(
        secret,
        method,
        token_client(connector()?, timeout),
    )
    .with_storage(Box::new(storage))
    .flow_delegate(Box::new(PrintUrl))
    .build()
    .await
    .map_err(|error| GmailError::TokenFile {
        path: token_file.clone(),
        detail: format!("failed to load it: {error}"),
    })?;
    auth.token(&[args.scope.as_str()])
        .await
        .map_err(|error| GmailError::Auth {
            method: "oauth2.token",
            detail: describe_auth_error(&error),
        })?;
    secure_token_file(token_file)?;

    let client = crate::client::Gmail::with_auth(args, "me", auth, connector()?)?;
    let profile = client.profile().await?;
    Ok(profile.email_address)
}

/// Describes a yup-oauth2 error without secrets: its variants carry OAuth error codes,
/// descriptions and I/O errors, never tokens.
pub(crate) fn describe_auth_error(error: &yup_oauth2::Error) -> String {
    error.to_string()
}

/// Delegate of the sign-in: the consent URL alone on stdout, so a script can read it.
struct PrintUrl;

impl InstalledFlowDelegate for PrintUrl {
    fn present_user_url<'a>(
        &'a self,
        url: &'a str,
        _need_code: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            spamflow_runtime::cli::print_to_stderr(
                "Open this URL in a browser and allow access; waiting for the redirect:",
            );
            // Standard output, so that a script can read the URL. A closed output leaves the
            // user without it, but must not end the sign-in in a panic.
            let _ = writeln!(std::io::stdout().lock(), "{url}");
            Ok(String::new())
        })
    }
}

/// Delegate of the services: never prompts.
struct NoPrompt;

impl InstalledFlowDelegate for NoPrompt {
    fn present_user_url<'a>(
        &'a self,
        _url: &'a str,
        _need_code: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async {
            Err(
                "the cached token cannot be refreshed and a service cannot prompt; run \
                 `gmail-integration auth` again"
                    .to_owned(),
            )
        })
    }
}

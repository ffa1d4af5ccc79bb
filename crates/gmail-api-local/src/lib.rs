//! A local stand-in for the Gmail REST API v1, for tests and demos.
//!
//! It serves folders of `.eml` files as mailboxes over HTTP/1.1 on the paths the
//! `google-gmail1` client calls (`gmail/v1/users/{userId}/...`). It also has an OAuth
//! stand-in (`/o/oauth2/auth`, `/token`) and Pub/Sub-style push after `users.watch`. Tests
//! use the control API under `/control/` to deliver mail, inject faults and read what clients
//! did. State lives in memory, so a restart reloads the folder and loses changes and tokens.
//!
//! The pure parts (labels, history, search queries, ids, tokens) are kept apart from the HTTP
//! layer in [`server`]. See `docs/gmail-api-local.md` for the endpoints and what is not
//! implemented.

#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
pub mod faults;
pub mod history;
pub mod labels;
pub mod load;
pub mod mailbox;
pub mod message;
pub mod push;
pub mod query;
pub mod server;

pub use error::Error;
pub use load::load_mailboxes;
pub use mailbox::{Mailbox, Mailboxes};
pub use push::PushEndpoint;
pub use server::{ServerOptions, router, serve};

impl Mailboxes {
    /// Loads every mailbox under `dir`, as [`load_mailboxes`] describes, keeping
    /// `history_retention` history records per mailbox.
    ///
    /// # Errors
    ///
    /// As [`load_mailboxes`].
    pub fn load(
        dir: &std::path::Path,
        default_email: &str,
        history_retention: usize,
    ) -> Result<Self, Error> {
        load_mailboxes(dir, default_email, history_retention)
    }
}

//! Applies policy actions to Gmail mailboxes through the `spamflow-gmail` client.
//!
//! For each action the handler reads the message's current labels and sends only the label
//! changes that are still missing, so applying an action twice changes nothing the second
//! time. Before each `messages.modify` it stores a marker for a SPAM change (see
//! [`own_label_change_key`]), so the Gmail sync, which reads SPAM changes as feedback, can tell
//! spamflow's own changes from a user's. Other labels get no marker, because nothing reads it. The suspect label is looked up once per mailbox, created when missing, and its id
//! cached for the life of the process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use spamflow_gmail::{Gmail, GmailError, LabelInfo};
use spamflow_runtime::store::{Store, StoreError, own_label_change_key};

use crate::policy::{Action, LABEL_INBOX, LABEL_SPAM, LabelChanges, LabelName};

/// Time to live of an own-change marker. The Gmail sync consumes a marker when it reads the
/// change from the mailbox history, normally within seconds. The expiry only bounds markers of
/// changes it never reads.
pub const OWN_CHANGE_MARKER_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The result of applying one action to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Gmail accepted these label changes.
    Applied(LabelChanges),
    /// The message already had the labels the action requests.
    Unchanged,
    /// Dry run: the changes the action would make. When `create_label` names a label that does
    /// not exist yet, the action would create it first, and `changes` lacks its unknown id.
    DryRun {
        changes: LabelChanges,
        create_label: Option<LabelName>,
    },
    /// Gmail has no message with this id, for example because the user deleted it.
    NotFound,
}

/// A failure to apply an action, which the handler retries until it succeeds or shutdown begins.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Gmail(#[from] GmailError),
    #[error("failed to store the own-change marker: {0}")]
    Store(#[from] StoreError),
}

impl ApplyError {
    /// Returns whether a later attempt may succeed without a change of settings: Gmail rate
    /// limits, server and network errors, and store failures.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Gmail(error) => error.is_transient(),
            Self::Store(_) => true,
        }
    }
}

/// One Gmail mailbox the handler may change.
struct Mailbox {
    client: Arc<Gmail>,
    /// User label ids by label name, filled on first use. The async lock also makes
    /// concurrent handlers wait for one lookup, so a missing label is created once.
    label_ids: tokio::sync::Mutex<HashMap<String, String>>,
}

/// The Gmail mailboxes the handler acts on, by email address in lower case, because Gmail
/// addresses do not depend on letter case.
pub struct GmailActions {
    mailboxes: HashMap<String, Mailbox>,
    dry_run: bool,
}

impl std::fmt::Debug for GmailActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmailActions")
            .field("mailboxes", &self.mailboxes.len())
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl GmailActions {
    /// Creates the actions over one client per mailbox address. In a dry run, [`apply`]
    /// reads labels but never creates a label or changes a message.
    ///
    /// [`apply`]: GmailActions::apply
    pub fn new(clients: impl IntoIterator<Item = (String, Arc<Gmail>)>, dry_run: bool) -> Self {
        let mailboxes = clients
            .into_iter()
            .map(|(address, client)| {
                let mailbox = Mailbox {
                    client,
                    label_ids: tokio::sync::Mutex::default(),
                };
                (address.to_lowercase(), mailbox)
            })
            .collect();
        Self { mailboxes, dry_run }
    }

    /// Returns whether the handler has a Gmail client for `mailbox`.
    pub fn has_mailbox(&self, mailbox: &str) -> bool {
        self.mailboxes.contains_key(&mailbox.to_lowercase())
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Applies `action` to the message `message_id` of `mailbox_address`. A mailbox without a
    /// client (see [`GmailActions::has_mailbox`]) yields [`Outcome::NotFound`].
    ///
    /// # Errors
    ///
    /// Returns [`ApplyError`] when a Gmail call fails after the client's own retries, or the
    /// own-change markers cannot be stored. Nothing is half-applied in a way a retry would
    /// repeat: a retry reads the labels again and sends only what is still missing.
    pub async fn apply(
        &self,
        store: &Store,
        mailbox_address: &str,
        message_id: &str,
        action: &Action,
    ) -> Result<Outcome, ApplyError> {
        let Some(mailbox) = self.mailboxes.get(&mailbox_address.to_lowercase()) else {
            return Ok(Outcome::NotFound);
        };

        let mut requested = LabelChanges::default();
        let mut create_label = None;
        match action {
            Action::MoveToSpam => {
                requested.add.push(LABEL_SPAM.to_owned());
                requested.remove.push(LABEL_INBOX.to_owned());
            }
            Action::AddLabel(name) => match self.label_id(mailbox, name).await? {
                Some(id) => requested.add.push(id),
                None => create_label = Some(name.clone()),
            },
        }

        let current = match mailbox.client.get_labels(message_id).await {
            Ok(labels) => labels,
            Err(error) if error.status() == Some(404) => return Ok(Outcome::NotFound),
            Err(error) => return Err(error.into()),
        };
        let changes = requested.against(&current);
        if self.dry_run {
            return Ok(Outcome::DryRun {
                changes,
                create_label,
            });
        }
        if changes.is_empty() {
            return Ok(Outcome::Unchanged);
        }

        for (label_id, added) in feedback_changes(&changes) {
            let key = own_label_change_key(mailbox_address, message_id, label_id, added);
            store
                .set_value(&key, "1", Some(OWN_CHANGE_MARKER_TTL))
                .await?;
        }
        let modified = mailbox
            .client
            .modify(message_id, &changes.add, &changes.remove)
            .await;
        match modified {
            Ok(_) => Ok(Outcome::Applied(changes)),
            Err(error) if error.status() == Some(404) => {
                remove_markers(store, mailbox_address, message_id, &changes).await;
                Ok(Outcome::NotFound)
            }
            Err(error) => {
                // After a rate limit, server or network error the change may still have been
                // made, so its markers stay. Any other error means Gmail made no change.
                if !error.is_transient() {
                    remove_markers(store, mailbox_address, message_id, &changes).await;
                }
                if let Action::AddLabel(name) = action {
                    // Gmail rejects the cached id if the user deleted the label meanwhile, so the
                    // next attempt looks the label up again.
                    mailbox.label_ids.lock().await.remove(name.as_str());
                }
                Err(error.into())
            }
        }
    }

    /// Returns the id of the user label `name`, creating the label when it is missing, except
    /// in a dry run, which returns `None` for a missing label.
    async fn label_id(
        &self,
        mailbox: &Mailbox,
        name: &LabelName,
    ) -> Result<Option<String>, ApplyError> {
        let mut cache = mailbox.label_ids.lock().await;
        if let Some(id) = cache.get(name.as_str()) {
            return Ok(Some(id.clone()));
        }
        let labels = mailbox.client.labels().await?;
        if let Some(id) = find_label(&labels, name) {
            cache.insert(name.as_str().to_owned(), id.clone());
            return Ok(Some(id));
        }
        if self.dry_run {
            return Ok(None);
        }
        // `ensure_label` lists the labels once more and, on a 409 because another process
        // created the label meanwhile, returns the existing one.
        let id = mailbox.client.ensure_label(name.as_str()).await?;
        tracing::info!(mailbox = mailbox.client.tag(), label_id = %id, "Created the suspect label, unless another process created it first");
        cache.insert(name.as_str().to_owned(), id.clone());
        Ok(Some(id))
    }
}

/// Returns the changes the Gmail sync reads as a user's feedback: those of the SPAM label.
fn feedback_changes(changes: &LabelChanges) -> impl Iterator<Item = (&str, bool)> {
    changes
        .each()
        .filter(|(label_id, _)| *label_id == LABEL_SPAM)
}

/// Removes the own-change markers of changes that Gmail did not make, so a later change by the
/// user is not taken for spamflow's own. A failure only logs, because the markers expire anyway.
///
/// NOTE: no test covers this path, because the local Gmail API cannot delete a message between
/// the handler's `messages.get` and its `messages.modify`.
async fn remove_markers(store: &Store, mailbox: &str, message_id: &str, changes: &LabelChanges) {
    for (label_id, added) in feedback_changes(changes) {
        let key = own_label_change_key(mailbox, message_id, label_id, added);
        if let Err(error) = store.take_value(&key).await {
            tracing::warn!(%error, message_id, label_id, "Failed to remove an own-change marker, which expires on its own");
        }
    }
}

/// Finds the id of the user label called `name`: an exact match, or else one that differs
/// only in letter case, so a label the user created as `Spamflow/Suspected` is reused rather
/// than joined by a second one.
fn find_label(labels: &[LabelInfo], name: &LabelName) -> Option<String> {
    let exact = labels.iter().find(|label| label.name == name.as_str());
    let folded = || {
        labels
            .iter()
            .find(|label| label.name.to_lowercase() == name.as_str().to_lowercase())
    };
    exact.or_else(folded).map(|label| label.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_label_prefers_exact_name() {
        let name = LabelName::parse("spamflow/suspected").unwrap();
        let label = |id: &str, name: &str| LabelInfo {
            id: id.to_owned(),
            name: name.to_owned(),
            kind: "user".to_owned(),
        };
        let labels = vec![
            label("Label_1", "Spamflow/Suspected"),
            label("Label_2", "spamflow/suspected"),
        ];
        assert_eq!(find_label(&labels, &name), Some("Label_2".to_owned()));
        assert_eq!(find_label(&labels[..1], &name), Some("Label_1".to_owned()));
        assert_eq!(find_label(&[], &name), None);
    }
}

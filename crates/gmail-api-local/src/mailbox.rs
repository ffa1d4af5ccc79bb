//! The state of the served mailboxes and the operations the Gmail endpoints perform on it,
//! free of HTTP and file I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::Error;
use crate::history::{History, HistoryPage, HistoryRecord, HistoryRequest, page_size};
use crate::labels::{INBOX, Labels, SPAM, TRASH, UNREAD};
use crate::message::{StoredMessage, date_header_ms, message_id_for_delivery, snippet};
use crate::query::Query;

/// Default number of history records kept per mailbox.
pub const DEFAULT_HISTORY_RETENTION: usize = 10_000;

/// How long a users.watch lasts, as in Gmail: 7 days in milliseconds.
pub const WATCH_DURATION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// An active users.watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Label ids the watch filters on; empty means every change.
    pub label_ids: Vec<String>,
    /// `labelFilterBehavior` is `exclude`: changes touching `label_ids` are not pushed.
    pub exclude: bool,
    /// Milliseconds since the epoch when the watch ends.
    pub expiration_ms: i64,
}

/// The label changes one modify made to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelChange {
    pub message_id: String,
    /// Label ids that were absent and are now present.
    pub added: Vec<String>,
    /// Label ids that were present and are now absent.
    pub removed: Vec<String>,
}

/// The parameters of one messages.list call.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub label_ids: Vec<String>,
    pub q: Option<String>,
    pub include_spam_trash: bool,
    pub max_results: Option<usize>,
    pub page_token: Option<String>,
}

/// One page of messages.list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Message ids, newest first.
    pub ids: Vec<String>,
    pub next_page_token: Option<String>,
    /// Count of all matching messages, over every page.
    pub result_size_estimate: usize,
}

/// One mailbox: its messages, labels, history and watch.
#[derive(Debug, Clone)]
pub struct Mailbox {
    email: String,
    messages: BTreeMap<String, StoredMessage>,
    labels: Labels,
    history: History,
    history_id: u64,
    delivered: u64,
    retention: usize,
    watch: Option<Watch>,
}

impl Mailbox {
    /// Creates an empty mailbox for `email` that keeps `retention` history records.
    pub fn new(email: &str, retention: usize) -> Self {
        Self {
            email: email.to_owned(),
            messages: BTreeMap::new(),
            labels: Labels::default(),
            history: History::new(1, retention),
            history_id: 1,
            delivered: 0,
            retention,
            watch: None,
        }
    }

    /// Returns the address of this mailbox.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// Returns the current history id.
    pub fn history_id(&self) -> u64 {
        self.history_id
    }

    /// Returns the labels of this mailbox.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Returns the labels for changes, such as labels.create.
    pub fn labels_mut(&mut self) -> &mut Labels {
        &mut self.labels
    }

    /// Returns every message, ordered by id.
    pub fn messages(&self) -> impl Iterator<Item = &StoredMessage> {
        self.messages.values()
    }

    /// Adds a message read from the mailbox folder at start-up. It gets the next history id
    /// but no history record, because history starts after loading.
    pub fn insert_loaded(&mut self, mut message: StoredMessage) {
        self.history_id += 1;
        message.history_id = self.history_id;
        self.messages.insert(message.id.clone(), message);
        self.history = History::new(self.history_id, self.retention);
    }

    /// Returns the message with `id`.
    ///
    /// # Errors
    ///
    /// [`Error::MessageNotFound`].
    pub fn get(&self, id: &str) -> Result<&StoredMessage, Error> {
        self.messages
            .get(id)
            .ok_or_else(|| Error::MessageNotFound(id.to_owned()))
    }

    /// Adds a message delivered at run time, with `label_ids` (INBOX and UNREAD when `None`),
    /// and records it as messagesAdded. Returns its id and the new history id.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty message, [`Error::InvalidLabel`] for an
    /// unknown label id.
    pub fn deliver(
        &mut self,
        raw: Vec<u8>,
        label_ids: Option<Vec<String>>,
        now_ms: i64,
    ) -> Result<(String, u64), Error> {
        if raw.is_empty() {
            return Err(Error::invalid(
                "raw_base64",
                "",
                "the message is empty; send the RFC 5322 bytes",
            ));
        }
        let labels: BTreeSet<String> = match label_ids {
            Some(ids) => ids.into_iter().collect(),
            None => [INBOX, UNREAD].iter().map(|id| (*id).to_owned()).collect(),
        };
        self.check_labels(labels.iter())?;

        self.delivered += 1;
        let mut id = message_id_for_delivery(&self.email, self.delivered);
        // Delivery ids and file ids hash different prefixes, so they differ unless SHA-256
        // collides. Skipping taken ids keeps the map consistent even then.
        while self.messages.contains_key(&id) {
            self.delivered += 1;
            id = message_id_for_delivery(&self.email, self.delivered);
        }

        self.history_id += 1;
        let message = StoredMessage {
            id: id.clone(),
            internal_date_ms: date_header_ms(&raw).unwrap_or(now_ms),
            snippet: snippet(&raw),
            raw: Arc::new(raw),
            labels: labels.clone(),
            history_id: self.history_id,
            source: None,
        };
        self.messages.insert(id.clone(), message);

        self.history.push(HistoryRecord {
            id: self.history_id,
            message_id: id.clone(),
            label_ids: labels.into_iter().collect(),
            message_added: true,
            labels_added: Vec::new(),
            labels_removed: Vec::new(),
        });
        Ok((id, self.history_id))
    }

    /// Adds and removes labels on the messages `ids`, as messages.modify and
    /// messages.batchModify do. Every id and label is checked before anything changes. Each
    /// message whose labels really change gets a new history id and one history record.
    /// Returns what changed per message, in the order of `ids`.
    ///
    /// # Errors
    ///
    /// [`Error::MessageNotFound`], [`Error::InvalidLabel`], or [`Error::InvalidArgument`]
    /// when a label is both added and removed.
    pub fn modify(
        &mut self,
        ids: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<LabelChange>, Error> {
        self.check_labels(add.iter().chain(remove))?;
        if let Some(both) = add.iter().find(|id| remove.contains(id)) {
            return Err(Error::invalid(
                "label id",
                both.as_str(),
                "is in both addLabelIds and removeLabelIds",
            ));
        }
        if let Some(missing) = ids.iter().find(|id| !self.messages.contains_key(*id)) {
            return Err(Error::MessageNotFound(missing.clone()));
        }
        let mut changes = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(message) = self.messages.get_mut(id) else {
                continue;
            };
            let added: Vec<String> = add
                .iter()
                .filter(|label| message.labels.insert((*label).clone()))
                .cloned()
                .collect();
            let removed: Vec<String> = remove
                .iter()
                .filter(|label| message.labels.remove(*label))
                .cloned()
                .collect();
            if !added.is_empty() || !removed.is_empty() {
                self.history_id += 1;
                message.history_id = self.history_id;
                self.history.push(HistoryRecord {
                    id: self.history_id,
                    message_id: id.clone(),
                    label_ids: message.labels.iter().cloned().collect(),
                    message_added: false,
                    labels_added: added.clone(),
                    labels_removed: removed.clone(),
                });
            }
            changes.push(LabelChange {
                message_id: id.clone(),
                added,
                removed,
            });
        }
        Ok(changes)
    }

    fn check_labels<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> Result<(), Error> {
        for id in ids {
            if !self.labels.contains(id) {
                return Err(Error::InvalidLabel(id.clone()));
            }
        }
        Ok(())
    }

    /// Lists message ids newest first (by internal date, then id), filtered as messages.list
    /// filters them. Spam and trash are left out unless `include_spam_trash` is set or the
    /// request names SPAM or TRASH in its label ids or query.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuery`] for an unsupported `q`, [`Error::InvalidLabel`] for an unknown
    /// label id, [`Error::InvalidArgument`] for a bad page token or maxResults.
    pub fn list(&self, request: &ListRequest) -> Result<ListPage, Error> {
        let query = Query::parse(request.q.as_deref().unwrap_or(""))?;
        self.check_labels(request.label_ids.iter())?;
        let page_size = page_size(request.max_results)?;
        let offset = match &request.page_token {
            Some(token) => token.parse::<usize>().map_err(|_| {
                Error::invalid(
                    "pageToken",
                    token.as_str(),
                    "not a token returned by messages.list; start again without pageToken",
                )
            })?,
            None => 0,
        };
        let asks_for = |label: &str| {
            request.include_spam_trash
                || request.label_ids.iter().any(|id| id == label)
                || query.asks_for_label(label)
        };
        let (show_spam, show_trash) = (asks_for(SPAM), asks_for(TRASH));
        let label_id_for_name = |name: &str| {
            self.labels
                .find_for_query(name)
                .map(|label| label.id.clone())
        };

        let mut matching: Vec<&StoredMessage> = self
            .messages
            .values()
            .filter(|message| show_spam || !message.labels.contains(SPAM))
            .filter(|message| show_trash || !message.labels.contains(TRASH))
            .filter(|message| {
                request
                    .label_ids
                    .iter()
                    .all(|id| message.labels.contains(id))
            })
            .filter(|message| {
                query.terms.iter().all(|term| {
                    term.matches(
                        &message.labels,
                        message.internal_date_ms,
                        &label_id_for_name,
                    )
                })
            })
            .collect();
        matching.sort_by(|a, b| {
            b.internal_date_ms
                .cmp(&a.internal_date_ms)
                .then_with(|| b.id.cmp(&a.id))
        });

        let ids: Vec<String> = matching
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|message| message.id.clone())
            .collect();
        let end = offset.saturating_add(page_size);
        let next_page_token = (end < matching.len()).then(|| end.to_string());
        Ok(ListPage {
            ids,
            next_page_token,
            result_size_estimate: matching.len(),
        })
    }

    /// Returns one page of history.list.
    ///
    /// # Errors
    ///
    /// As [`History::list`].
    pub fn history(&self, request: &HistoryRequest) -> Result<HistoryPage, Error> {
        self.history.list(request)
    }

    /// Returns the count of messages with `label_id` and of those also unread.
    pub fn label_counts(&self, label_id: &str) -> (usize, usize) {
        let with_label = self
            .messages
            .values()
            .filter(|message| message.labels.contains(label_id));
        with_label.fold((0, 0), |(total, unread), message| {
            (
                total + 1,
                unread + usize::from(message.labels.contains(UNREAD)),
            )
        })
    }

    /// Starts (or renews) a watch and returns the current history id and the expiration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLabel`] for an unknown label id, [`Error::InvalidArgument`] for a
    /// `labelFilterBehavior` other than include or exclude.
    pub fn watch(
        &mut self,
        label_ids: Vec<String>,
        filter_behavior: Option<&str>,
        now_ms: i64,
    ) -> Result<(u64, i64), Error> {
        self.check_labels(label_ids.iter())?;
        let exclude = match filter_behavior.map(str::to_ascii_lowercase).as_deref() {
            None | Some("include") => false,
            Some("exclude") => true,
            Some(other) => {
                return Err(Error::invalid(
                    "labelFilterBehavior",
                    other,
                    "expected include or exclude",
                ));
            }
        };
        let expiration_ms = now_ms.saturating_add(WATCH_DURATION_MS);
        self.watch = Some(Watch {
            label_ids,
            exclude,
            expiration_ms,
        });
        Ok((self.history_id, expiration_ms))
    }

    /// Ends the watch, if any.
    pub fn stop(&mut self) {
        self.watch = None;
    }

    /// Whether a change touching `label_ids` should be pushed at `now_ms`.
    pub fn watch_wants(&self, label_ids: &[String], now_ms: i64) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        if now_ms >= watch.expiration_ms {
            return false;
        }
        if watch.label_ids.is_empty() {
            return true;
        }
        let touches = label_ids.iter().any(|id| watch.label_ids.contains(id));
        touches != watch.exclude
    }
}

/// Every mailbox this server serves, by lowercase address, and which one is the default.
#[derive(Debug, Clone)]
pub struct Mailboxes {
    default_email: String,
    boxes: BTreeMap<String, Mailbox>,
}

impl Mailboxes {
    /// Creates the set with the default mailbox `default_email`, empty, keeping `retention`
    /// history records per mailbox.
    pub fn new(default_email: &str, retention: usize) -> Self {
        let default_email = default_email.to_ascii_lowercase();
        let mut boxes = BTreeMap::new();
        boxes.insert(
            default_email.clone(),
            Mailbox::new(&default_email, retention),
        );
        Self {
            default_email,
            boxes,
        }
    }

    /// Returns the address of the default mailbox (`--email`).
    pub fn default_email(&self) -> &str {
        &self.default_email
    }

    /// Returns every served address.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.boxes.keys().map(String::as_str)
    }

    /// Returns the mailbox of `email`, creating it empty when new (used while loading).
    pub fn entry(&mut self, email: &str, retention: usize) -> &mut Mailbox {
        let email = email.to_ascii_lowercase();
        self.boxes
            .entry(email.clone())
            .or_insert_with(|| Mailbox::new(&email, retention))
    }

    /// Returns the mailbox of `email` (any case), or the default mailbox for `None`.
    ///
    /// # Errors
    ///
    /// [`Error::MailboxNotFound`].
    pub fn get(&self, email: Option<&str>) -> Result<&Mailbox, Error> {
        let key = email.map_or_else(|| self.default_email.clone(), str::to_ascii_lowercase);
        self.boxes.get(&key).ok_or(Error::MailboxNotFound(key))
    }

    /// Returns the mailbox of `email` for changes.
    ///
    /// # Errors
    ///
    /// [`Error::MailboxNotFound`].
    pub fn get_mut(&mut self, email: Option<&str>) -> Result<&mut Mailbox, Error> {
        let key = email.map_or_else(|| self.default_email.clone(), str::to_ascii_lowercase);
        self.boxes.get_mut(&key).ok_or(Error::MailboxNotFound(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: a@example.com\r\nDate: Wed, 04 Mar 2026 03:41:57 +0000\r\n\r\nhi";

    fn strings(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn deliver_bumps_history_and_records_message_added() {
        let mut mailbox = Mailbox::new("me@example.com", 100);
        let start = mailbox.history_id();
        let (id, history_id) = mailbox.deliver(RAW.to_vec(), None, 5).expect("deliver");
        assert_eq!(history_id, start + 1);
        let message = mailbox.get(&id).expect("stored");
        assert_eq!(message.internal_date_ms, 1_772_595_717_000);
        assert_eq!(
            message.labels,
            strings(&["INBOX", "UNREAD"]).into_iter().collect()
        );
        let page = mailbox
            .history(&HistoryRequest {
                start_history_id: start,
                ..HistoryRequest::default()
            })
            .expect("history");
        assert_eq!(page.records.len(), 1);
        assert!(page.records[0].message_added);
        assert_eq!(page.records[0].message_id, id);
        assert!(matches!(
            mailbox.deliver(RAW.to_vec(), Some(strings(&["NOPE"])), 5),
            Err(Error::InvalidLabel(label)) if label == "NOPE"
        ));
        assert!(matches!(
            mailbox.deliver(Vec::new(), None, 5),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn modify_records_only_real_changes() {
        let mut mailbox = Mailbox::new("me@example.com", 100);
        let (id, after_delivery) = mailbox.deliver(RAW.to_vec(), None, 5).expect("deliver");
        let changes = mailbox
            .modify(
                std::slice::from_ref(&id),
                &strings(&["SPAM"]),
                &strings(&["INBOX", "STARRED"]),
            )
            .expect("modify");
        assert_eq!(changes[0].added, ["SPAM"]);
        assert_eq!(changes[0].removed, ["INBOX"]);
        assert_eq!(mailbox.history_id(), after_delivery + 1);

        let unchanged = mailbox
            .modify(std::slice::from_ref(&id), &strings(&["SPAM"]), &[])
            .expect("modify again");
        assert!(unchanged[0].added.is_empty());
        assert_eq!(mailbox.history_id(), after_delivery + 1);

        assert!(matches!(
            mailbox.modify(&[id.clone(), "ffff".into()], &strings(&["STARRED"]), &[]),
            Err(Error::MessageNotFound(missing)) if missing == "ffff"
        ));
        assert!(!mailbox.get(&id).expect("stored").labels.contains("STARRED"));
        assert!(matches!(
            mailbox.modify(
                std::slice::from_ref(&id),
                &strings(&["SPAM"]),
                &strings(&["SPAM"])
            ),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn list_sorts_newest_first_without_spam() {
        let mut mailbox = Mailbox::new("me@example.com", 100);
        let old = b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nold".to_vec();
        let new = b"Date: Tue, 02 Jan 2024 00:00:00 +0000\r\n\r\nnew".to_vec();
        let (old_id, _) = mailbox.deliver(old, None, 0).expect("old");
        let (new_id, _) = mailbox.deliver(new, None, 0).expect("new");
        let (spam_id, _) = mailbox
            .deliver(RAW.to_vec(), Some(strings(&["SPAM"])), 0)
            .expect("spam");

        let all = mailbox.list(&ListRequest::default()).expect("list");
        assert_eq!(all.ids, [new_id.clone(), old_id.clone()]);

        let spam = ListRequest {
            q: Some("in:spam".into()),
            ..ListRequest::default()
        };
        assert_eq!(
            mailbox.list(&spam).expect("list").ids,
            std::slice::from_ref(&spam_id)
        );
        let everything = ListRequest {
            include_spam_trash: true,
            max_results: Some(2),
            ..ListRequest::default()
        };
        let first = mailbox.list(&everything).expect("list");
        assert_eq!(first.ids, [spam_id, new_id]);
        assert_eq!(first.result_size_estimate, 3);
        let second = mailbox
            .list(&ListRequest {
                page_token: first.next_page_token,
                ..everything
            })
            .expect("list");
        assert_eq!(second.ids, [old_id]);
        assert_eq!(second.next_page_token, None);
    }

    #[test]
    fn watch_filters_by_label_and_expires() {
        let mut mailbox = Mailbox::new("me@example.com", 100);
        assert!(!mailbox.watch_wants(&strings(&["INBOX"]), 0));
        let (_, expiration) = mailbox
            .watch(strings(&["SPAM"]), None, 1_000)
            .expect("watch");
        assert_eq!(expiration, 1_000 + WATCH_DURATION_MS);
        assert!(mailbox.watch_wants(&strings(&["SPAM"]), 2_000));
        assert!(!mailbox.watch_wants(&strings(&["INBOX"]), 2_000));
        assert!(!mailbox.watch_wants(&strings(&["SPAM"]), expiration));
        mailbox.stop();
        assert!(!mailbox.watch_wants(&strings(&["SPAM"]), 2_000));
    }
}

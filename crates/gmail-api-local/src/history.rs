//! The change history of one mailbox, as history.list pages through it.
//!
//! Each change (a message added, labels added or removed by one modify) is one record whose id
//! is the mailbox history id after the change. Only the newest `retention` records are kept.
//! A client that requests a start before them gets 404 and must do a full sync, as with Gmail.

use std::collections::VecDeque;

use crate::error::Error;

/// Default and maximum page sizes of history.list and messages.list, as in Gmail.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page size; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: usize = 500;

/// One change to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    /// The mailbox history id right after this change.
    pub id: u64,
    pub message_id: String,
    /// The message's label ids right after this change.
    pub label_ids: Vec<String>,
    /// The message was added to the mailbox.
    pub message_added: bool,
    /// Label ids this change added.
    pub labels_added: Vec<String>,
    /// Label ids this change removed.
    pub labels_removed: Vec<String>,
}

impl HistoryRecord {
    fn mentions_label(&self, label_id: &str) -> bool {
        [&self.label_ids, &self.labels_added, &self.labels_removed]
            .iter()
            .any(|ids| ids.iter().any(|id| id == label_id))
    }

    /// Keeps only the parts of the record whose type is in `types` (all when empty), or
    /// returns `None` when nothing is left.
    fn restricted_to(&self, types: &[HistoryType]) -> Option<Self> {
        if types.is_empty() {
            return Some(self.clone());
        }
        let mut record = self.clone();
        if !types.contains(&HistoryType::MessageAdded) {
            record.message_added = false;
        }
        if !types.contains(&HistoryType::LabelAdded) {
            record.labels_added.clear();
        }
        if !types.contains(&HistoryType::LabelRemoved) {
            record.labels_removed.clear();
        }
        let empty = !record.message_added
            && record.labels_added.is_empty()
            && record.labels_removed.is_empty();
        (!empty).then_some(record)
    }
}

/// A value of history.list's `historyTypes` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryType {
    MessageAdded,
    /// Accepted for compatibility; this server never deletes messages, so it matches nothing.
    MessageDeleted,
    LabelAdded,
    LabelRemoved,
}

impl HistoryType {
    /// Parses Gmail's spelling (`messageAdded`, `messageDeleted`, `labelAdded`,
    /// `labelRemoved`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the value.
    pub fn parse(value: &str) -> Result<Self, Error> {
        match value {
            "messageAdded" => Ok(Self::MessageAdded),
            "messageDeleted" => Ok(Self::MessageDeleted),
            "labelAdded" => Ok(Self::LabelAdded),
            "labelRemoved" => Ok(Self::LabelRemoved),
            other => Err(Error::invalid(
                "historyTypes",
                other,
                "expected messageAdded, messageDeleted, labelAdded or labelRemoved",
            )),
        }
    }
}

/// The parameters of one history.list call.
#[derive(Debug, Clone, Default)]
pub struct HistoryRequest {
    pub start_history_id: u64,
    pub label_id: Option<String>,
    pub history_types: Vec<HistoryType>,
    pub max_results: Option<usize>,
    pub page_token: Option<String>,
}

/// One page of history.list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub records: Vec<HistoryRecord>,
    /// Continues after the last record of this page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The retained records of one mailbox, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    records: VecDeque<HistoryRecord>,
    /// The smallest startHistoryId still answerable: every record after it is retained.
    oldest_start: u64,
    retention: usize,
}

impl History {
    /// Creates an empty history that accepts starts from `start` on and keeps the newest
    /// `retention` records (at least one).
    pub fn new(start: u64, retention: usize) -> Self {
        Self {
            records: VecDeque::new(),
            oldest_start: start,
            retention: retention.max(1),
        }
    }

    /// Appends a record, dropping the oldest when over retention.
    pub fn push(&mut self, record: HistoryRecord) {
        self.records.push_back(record);
        while self.records.len() > self.retention {
            if let Some(dropped) = self.records.pop_front() {
                self.oldest_start = dropped.id;
            }
        }
    }

    /// Returns the smallest startHistoryId that history.list still accepts.
    pub fn oldest_start(&self) -> u64 {
        self.oldest_start
    }

    /// Returns the records after `request.start_history_id` that match its filters, one page
    /// at a time.
    ///
    /// # Errors
    ///
    /// [`Error::HistoryExpired`] when the start (or page token) is older than the retained
    /// history, [`Error::InvalidArgument`] for a bad page token or maxResults.
    pub fn list(&self, request: &HistoryRequest) -> Result<HistoryPage, Error> {
        let page_size = page_size(request.max_results)?;
        let after = match &request.page_token {
            Some(token) => token.parse::<u64>().map_err(|_| {
                Error::invalid(
                    "pageToken",
                    token.as_str(),
                    "not a token returned by history.list; start again without pageToken",
                )
            })?,
            None => request.start_history_id,
        };
        if request.start_history_id < self.oldest_start || after < self.oldest_start {
            return Err(Error::HistoryExpired {
                start: request.start_history_id.min(after),
                oldest: self.oldest_start,
            });
        }
        let mut records = Vec::new();
        let mut next_page_token = None;
        for record in self.records.iter().filter(|record| record.id > after) {
            if let Some(label_id) = &request.label_id
                && !record.mentions_label(label_id)
            {
                continue;
            }
            let Some(record) = record.restricted_to(&request.history_types) else {
                continue;
            };
            if records.len() == page_size {
                next_page_token = records
                    .last()
                    .map(|last: &HistoryRecord| last.id.to_string());
                break;
            }
            records.push(record);
        }
        Ok(HistoryPage {
            records,
            next_page_token,
        })
    }
}

/// Validates maxResults: at least 1, default [`DEFAULT_PAGE_SIZE`], clamped to
/// [`MAX_PAGE_SIZE`].
///
/// # Errors
///
/// [`Error::InvalidArgument`] for 0.
pub fn page_size(max_results: Option<usize>) -> Result<usize, Error> {
    match max_results {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(0) => Err(Error::invalid("maxResults", "0", "must be at least 1")),
        Some(size) => Ok(size.min(MAX_PAGE_SIZE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(id: u64, message: &str) -> HistoryRecord {
        HistoryRecord {
            id,
            message_id: message.to_owned(),
            label_ids: vec!["INBOX".into(), "UNREAD".into()],
            message_added: true,
            labels_added: vec![],
            labels_removed: vec![],
        }
    }

    fn spam_added(id: u64, message: &str) -> HistoryRecord {
        HistoryRecord {
            id,
            message_id: message.to_owned(),
            label_ids: vec!["SPAM".into()],
            message_added: false,
            labels_added: vec!["SPAM".into()],
            labels_removed: vec!["INBOX".into()],
        }
    }

    fn request(start: u64) -> HistoryRequest {
        HistoryRequest {
            start_history_id: start,
            ..HistoryRequest::default()
        }
    }

    #[test]
    fn lists_records_after_start() {
        let mut history = History::new(10, 100);
        history.push(added(11, "a"));
        history.push(spam_added(12, "a"));
        let page = history.list(&request(10)).expect("list");
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.next_page_token, None);
        let page = history.list(&request(11)).expect("list");
        assert_eq!(page.records, vec![spam_added(12, "a")]);
        assert!(history.list(&request(12)).expect("list").records.is_empty());
        assert!(history.list(&request(99)).expect("list").records.is_empty());
    }

    #[test]
    fn start_before_retained_history_is_404() {
        let mut history = History::new(10, 2);
        assert!(matches!(
            history.list(&request(9)),
            Err(Error::HistoryExpired {
                start: 9,
                oldest: 10
            })
        ));
        history.push(added(11, "a"));
        history.push(added(12, "b"));
        history.push(added(13, "c"));
        assert_eq!(history.oldest_start(), 11);
        assert!(matches!(
            history.list(&request(10)),
            Err(Error::HistoryExpired { oldest: 11, .. })
        ));
        let page = history.list(&request(11)).expect("list");
        assert_eq!(
            page.records.iter().map(|r| r.id).collect::<Vec<_>>(),
            [12, 13]
        );
    }

    #[test]
    fn pages_through_records() {
        let mut history = History::new(0, 100);
        for id in 1..=5 {
            history.push(added(id, &format!("m{id}")));
        }

        let mut request = request(0);
        request.max_results = Some(2);
        let mut seen = Vec::new();
        loop {
            let page = history.list(&request).expect("list");
            seen.extend(page.records.iter().map(|r| r.id));
            match page.next_page_token {
                Some(token) => request.page_token = Some(token),
                None => break,
            }
        }
        assert_eq!(seen, [1, 2, 3, 4, 5]);

        request.page_token = Some("not-a-token".into());
        assert!(matches!(
            history.list(&request),
            Err(Error::InvalidArgument {
                name: "pageToken",
                ..
            })
        ));

        request.page_token = None;
        request.max_results = Some(0);
        assert!(matches!(
            history.list(&request),
            Err(Error::InvalidArgument {
                name: "maxResults",
                ..
            })
        ));
    }

    #[test]
    fn filters_by_label_and_type() {
        let mut history = History::new(0, 100);
        history.push(added(1, "a"));
        history.push(spam_added(2, "a"));
        let mut request = request(0);
        request.label_id = Some("SPAM".into());
        assert_eq!(history.list(&request).expect("list").records.len(), 1);

        request.label_id = None;
        request.history_types = vec![HistoryType::LabelRemoved];
        let page = history.list(&request).expect("list");
        assert_eq!(page.records.len(), 1);
        assert!(page.records[0].labels_added.is_empty());
        assert_eq!(page.records[0].labels_removed, ["INBOX"]);

        request.history_types = vec![HistoryType::MessageDeleted];
        assert!(history.list(&request).expect("list").records.is_empty());
        assert!(HistoryType::parse("labelChanged").is_err());
    }
}

//! The subset of Gmail's search syntax that messages.list accepts in `q`.
//!
//! Supported terms, each optionally negated with a leading `-`: `in:LABEL` (inbox, spam,
//! trash, sent, drafts, starred, important, chats, or anywhere), `label:NAME`, `is:unread`,
//! `is:read`, `is:starred`, `is:important`, `after:SECONDS` and `before:SECONDS` (Unix epoch
//! seconds). Terms are separated by whitespace and all must match. Anything else (free text,
//! `from:`, quotes, `OR`, braces, dates such as `2024/01/31`) is rejected with an error naming
//! the term, so a client never gets silently wrong results.

use crate::error::Error;

/// One condition of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The message has this label id.
    HasLabelId(String),
    /// The message has the label whose name (in query spelling) is this.
    HasLabelNamed(String),
    /// `in:anywhere`: every message, spam and trash included.
    Anywhere,
    /// The internal date is at or after this many seconds since the epoch.
    After(i64),
    /// The internal date is before this many seconds since the epoch.
    Before(i64),
}

/// A condition with its sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub condition: Condition,
}

/// A parsed `q`: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
}

impl Query {
    /// Parses a `q` value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQuery`] naming the first term that is not in the supported subset.
    pub fn parse(q: &str) -> Result<Self, Error> {
        let terms = q
            .split_whitespace()
            .map(parse_term)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { terms })
    }

    /// Checks whether a positive term names `label_id`, so spam or trash is searched even
    /// without includeSpamTrash, as Gmail does for `in:spam`.
    pub fn asks_for_label(&self, label_id: &str) -> bool {
        self.terms.iter().any(|term| {
            !term.negated
                && match &term.condition {
                    Condition::HasLabelId(id) => id == label_id,
                    Condition::HasLabelNamed(name) => name.eq_ignore_ascii_case(label_id),
                    Condition::Anywhere => true,
                    Condition::After(_) | Condition::Before(_) => false,
                }
        })
    }
}

fn parse_term(raw: &str) -> Result<Term, Error> {
    let (negated, body) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let invalid = |reason: &str| Error::InvalidQuery {
        term: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let Some((operator, value)) = body.split_once(':') else {
        return Err(invalid(
            "free-text search is not supported; use in:, label:, is:, after: or before:",
        ));
    };
    if value.is_empty() {
        return Err(invalid("the operator needs a value"));
    }
    if value.contains(['"', '(', ')', '{', '}']) {
        return Err(invalid("quotes, parentheses and braces are not supported"));
    }
    let condition = match operator.to_ascii_lowercase().as_str() {
        "in" => in_condition(value).ok_or_else(|| {
            invalid("expected in:inbox, spam, trash, sent, drafts, starred, important, chats or anywhere")
        })?,
        "label" => Condition::HasLabelNamed(value.to_owned()),
        "is" => is_condition(value)
            .ok_or_else(|| invalid("expected is:unread, is:read, is:starred or is:important"))?,
        "after" => Condition::After(epoch_seconds(value).ok_or_else(|| {
            invalid("expected Unix epoch seconds, for example after:1700000000")
        })?),
        "before" => Condition::Before(epoch_seconds(value).ok_or_else(|| {
            invalid("expected Unix epoch seconds, for example before:1700000000")
        })?),
        _ => {
            return Err(invalid(
                "unsupported operator; use in:, label:, is:, after: or before:",
            ));
        }
    };
    Ok(Term { negated, condition })
}

fn in_condition(value: &str) -> Option<Condition> {
    let label = match value.to_ascii_lowercase().as_str() {
        "anywhere" => return Some(Condition::Anywhere),
        "inbox" => "INBOX",
        "spam" => "SPAM",
        "trash" => "TRASH",
        "sent" => "SENT",
        "drafts" | "draft" => "DRAFT",
        "starred" => "STARRED",
        "important" => "IMPORTANT",
        "chats" | "chat" => "CHAT",
        _ => return None,
    };
    Some(Condition::HasLabelId(label.to_owned()))
}

/// Maps `is:` values to label conditions. `is:read` maps to a marker id that
/// [`Term::matches`] evaluates as "UNREAD is absent".
fn is_condition(value: &str) -> Option<Condition> {
    let label = match value.to_ascii_lowercase().as_str() {
        "unread" => "UNREAD",
        "read" => READ_MARKER,
        "starred" => "STARRED",
        "important" => "IMPORTANT",
        _ => return None,
    };
    Some(Condition::HasLabelId(label.to_owned()))
}

/// Pseudo label id for `is:read`, which matches when UNREAD is absent.
const READ_MARKER: &str = "-UNREAD";

fn epoch_seconds(value: &str) -> Option<i64> {
    if !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

impl Term {
    /// Checks whether a message with `label_ids` and `internal_date_ms` satisfies this term.
    /// `label_id_for_name` resolves `label:NAME` to a label id of the mailbox.
    pub fn matches(
        &self,
        label_ids: &std::collections::BTreeSet<String>,
        internal_date_ms: i64,
        label_id_for_name: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        let matches = match &self.condition {
            Condition::HasLabelId(id) if id == READ_MARKER => !label_ids.contains("UNREAD"),
            Condition::HasLabelId(id) => label_ids.contains(id),
            // An unknown label name matches nothing, as in Gmail.
            Condition::HasLabelNamed(name) => {
                label_id_for_name(name).is_some_and(|id| label_ids.contains(&id))
            }
            Condition::Anywhere => true,
            Condition::After(seconds) => internal_date_ms >= seconds.saturating_mul(1000),
            Condition::Before(seconds) => internal_date_ms < seconds.saturating_mul(1000),
        };
        matches != self.negated
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn labels(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    fn no_names(_: &str) -> Option<String> {
        None
    }

    fn matches(q: &str, ids: &[&str], date_ms: i64) -> bool {
        let query = Query::parse(q).expect("valid query");
        query
            .terms
            .iter()
            .all(|term| term.matches(&labels(ids), date_ms, &no_names))
    }

    #[test]
    fn parses_supported_terms() {
        let query =
            Query::parse("in:spam -is:unread after:100 before:200 label:Work").expect("parse");
        assert_eq!(query.terms.len(), 5);
        assert_eq!(
            query.terms[0],
            Term {
                negated: false,
                condition: Condition::HasLabelId("SPAM".into())
            }
        );
        assert!(query.terms[1].negated);
        assert_eq!(query.terms[2].condition, Condition::After(100));
        assert_eq!(
            query.terms[4].condition,
            Condition::HasLabelNamed("Work".into())
        );
        assert!(query.asks_for_label("SPAM"));
        assert!(!query.asks_for_label("TRASH"));
        assert_eq!(Query::parse("   ").expect("empty"), Query::default());
    }

    #[test]
    fn rejects_unknown_terms_naming_them() {
        for (q, term) in [
            ("hello", "hello"),
            ("in:inbox from:bob@example.com", "from:bob@example.com"),
            ("in:nowhere", "in:nowhere"),
            ("is:snoozed", "is:snoozed"),
            ("after:2024/01/31", "after:2024/01/31"),
            ("before:-5", "before:-5"),
            ("label:", "label:"),
            ("label:\"My", "label:\"My"),
            ("OR", "OR"),
        ] {
            match Query::parse(q) {
                Err(Error::InvalidQuery { term: named, .. }) => {
                    assert_eq!(named, term, "query {q}")
                }
                other => panic!("query {q} gave {other:?}"),
            }
        }
    }

    #[test]
    fn evaluates_labels_negation_and_dates() {
        assert!(matches("in:inbox is:unread", &["INBOX", "UNREAD"], 0));
        assert!(!matches("in:inbox is:unread", &["INBOX"], 0));
        assert!(matches("is:read", &["INBOX"], 0));
        assert!(!matches("-is:read", &["INBOX"], 0));
        assert!(matches("-in:spam", &["INBOX"], 0));
        assert!(!matches("-in:spam", &["SPAM"], 0));
        assert!(matches("after:10 before:20", &[], 10_000));
        assert!(!matches("after:10 before:20", &[], 20_000));
        assert!(!matches("after:10", &[], 9_999));
        assert!(!matches("label:missing", &["INBOX"], 0));
        assert!(matches("-label:missing", &["INBOX"], 0));
    }
}

//! One stored message: its raw bytes, labels and the facts Gmail reports about it, plus the
//! pure helpers that derive ids, dates, headers and snippets from raw RFC 5322 bytes.

use std::collections::BTreeSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Maximum length of a snippet in characters; Gmail's snippets are about this long.
const SNIPPET_CHARS: usize = 100;

/// A message of one mailbox.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Gmail message id: 16 lowercase hex digits. The thread id is the same value, because
    /// this server puts every message in a thread of its own.
    pub id: String,
    /// The RFC 5322 bytes, shared so that listing never copies them.
    pub raw: Arc<Vec<u8>>,
    /// Label ids, system and user.
    pub labels: BTreeSet<String>,
    /// Milliseconds since the Unix epoch.
    pub internal_date_ms: i64,
    /// History id of the last change to this message.
    pub history_id: u64,
    /// Path relative to the mailbox folder, or `None` for a message delivered at run time.
    pub source: Option<String>,
    /// The start of the text body.
    pub snippet: String,
}

/// Derives the message id of the file at `relative_path` (slash-separated, relative to the
/// mailbox folder), so the same folder yields the same ids across restarts.
pub fn message_id_for_path(relative_path: &str) -> String {
    hex_id(&format!("file:{relative_path}"))
}

/// Derives the message id of the `sequence`-th message delivered at run time to `mailbox`.
/// The prefix keeps these ids apart from the ids of files.
pub fn message_id_for_delivery(mailbox: &str, sequence: u64) -> String {
    hex_id(&format!("delivered:{mailbox}:{sequence}"))
}

fn hex_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    // Gmail ids are 16 hex digits; the first 8 digest bytes give that many.
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A header field of a message, unfolded, with its name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Parses the header section of `raw` (everything before the first empty line) into fields,
/// joining folded continuation lines. Lines without a colon are skipped, as mail readers do.
pub fn parse_headers(raw: &[u8]) -> Vec<Header> {
    let text = String::from_utf8_lossy(raw);
    let mut headers: Vec<Header> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push(Header {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }
    headers
}

/// Returns the `Date` header of `raw` in milliseconds since the Unix epoch, or `None` when it
/// is missing or unparseable.
pub fn date_header_ms(raw: &[u8]) -> Option<i64> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    let date = message.date()?;
    if !date.is_valid() {
        return None;
    }
    Some(date.to_timestamp().saturating_mul(1000))
}

/// Returns the first characters of the text body of `raw`, with whitespace collapsed.
pub fn snippet(raw: &[u8]) -> String {
    let Some(message) = mail_parser::MessageParser::default().parse(raw) else {
        return String::new();
    };
    let Some(text) = message.body_text(0) else {
        return String::new();
    };
    let mut snippet = String::new();
    for word in text.split_whitespace() {
        if !snippet.is_empty() {
            snippet.push(' ');
        }
        snippet.push_str(word);
        if snippet.chars().count() >= SNIPPET_CHARS {
            break;
        }
    }
    snippet.chars().take(SNIPPET_CHARS).collect()
}

/// Returns the media type (`type/subtype`, lowercase) of the message's Content-Type header,
/// defaulting to `text/plain` as RFC 2045 does.
pub fn mime_type(headers: &[Header]) -> String {
    headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-type"))
        .and_then(|header| header.value.split(';').next())
        .map(|media_type| media_type.trim().to_ascii_lowercase())
        .filter(|media_type| media_type.contains('/'))
        .unwrap_or_else(|| "text/plain".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_stable_and_distinct() {
        let first = message_id_for_path("SPAM/0001.eml");
        assert_eq!(first, message_id_for_path("SPAM/0001.eml"));
        assert_eq!(first.len(), 16);
        assert!(first.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(first, message_id_for_path("0001.eml"));
        assert_ne!(
            message_id_for_delivery("me@example.com", 1),
            message_id_for_delivery("me@example.com", 2)
        );
        assert_ne!(
            message_id_for_delivery("me@example.com", 1),
            message_id_for_delivery("other@example.com", 1)
        );
    }

    #[test]
    fn headers_unfold_continuation_lines() {
        let raw =
            b"Subject: a long\r\n\tsubject\r\nFrom: x@example.com\r\nbad line\r\n\r\nBody: no";
        let headers = parse_headers(raw);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].value, "a long subject");
        assert_eq!(headers[1].name, "From");
    }

    #[test]
    fn date_header_parses_rfc5322_dates() {
        let raw = b"Date: Wed, 04 Mar 2026 03:41:57 +0000\r\n\r\nbody";
        assert_eq!(date_header_ms(raw), Some(1_772_595_717_000));
        assert_eq!(date_header_ms(b"Date: not a date\r\n\r\n"), None);
        assert_eq!(date_header_ms(b"Subject: none\r\n\r\n"), None);
    }

    #[test]
    fn snippet_collapses_whitespace() {
        let raw = b"Subject: s\r\n\r\nHello\r\n  world\r\n";
        assert_eq!(snippet(raw), "Hello world");
    }

    #[test]
    fn mime_type_defaults_to_text_plain() {
        assert_eq!(mime_type(&[]), "text/plain");
        let headers = parse_headers(b"Content-Type: Text/HTML; charset=utf-8\r\n\r\n");
        assert_eq!(mime_type(&headers), "text/html");
    }
}

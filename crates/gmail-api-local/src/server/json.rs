//! Renders stored state as Gmail's JSON resources: camelCase names, ids as strings, and
//! int64/uint64 values (historyId, internalDate, expiration) as decimal strings, as Google's
//! discovery documents declare them.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::Error;
use crate::history::HistoryRecord;
use crate::labels::Label;
use crate::message::{StoredMessage, mime_type, parse_headers};

/// Deepest MIME nesting rendered by the full format; deeper parts are left out.
const MAX_PART_DEPTH: usize = 32;

/// The `format` parameter of messages.get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Minimal,
    Metadata,
    Raw,
    Full,
}

impl Format {
    /// Parses `format`, with Gmail's default `full` when absent.
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, Error> {
        match value {
            Some("minimal") => Ok(Self::Minimal),
            Some("metadata") => Ok(Self::Metadata),
            Some("raw") => Ok(Self::Raw),
            None | Some("full") => Ok(Self::Full),
            Some(other) => Err(Error::invalid(
                "format",
                other,
                "expected full, metadata, minimal or raw",
            )),
        }
    }
}

/// Renders `{"id","threadId"}`, the form messages.list and history use.
pub(crate) fn message_ref(id: &str) -> Value {
    json!({ "id": id, "threadId": id })
}

/// Renders `{"id","threadId","labelIds"}`, the form history records use.
pub(crate) fn message_with_labels(id: &str, label_ids: &[String]) -> Value {
    json!({ "id": id, "threadId": id, "labelIds": label_ids })
}

/// Renders a message in `format`. `metadata_headers` limits the headers of the metadata
/// format (all headers when empty), compared without case.
pub(crate) fn message(
    message: &StoredMessage,
    format: Format,
    metadata_headers: &[String],
) -> Value {
    let mut value = json!({
        "id": message.id,
        "threadId": message.id,
        "labelIds": message.labels,
        "snippet": message.snippet,
        "historyId": message.history_id.to_string(),
        "internalDate": message.internal_date_ms.to_string(),
        "sizeEstimate": message.raw.len(),
    });
    match format {
        Format::Minimal => {}
        Format::Raw => {
            value["raw"] = Value::String(
                base64::engine::general_purpose::URL_SAFE.encode(message.raw.as_slice()),
            );
        }
        Format::Full => {
            value["payload"] = full_payload(&message.raw);
        }
        Format::Metadata => {
            let headers = parse_headers(&message.raw);
            let selected: Vec<Value> = headers
                .iter()
                .filter(|header| {
                    metadata_headers.is_empty()
                        || metadata_headers
                            .iter()
                            .any(|wanted| wanted.eq_ignore_ascii_case(&header.name))
                })
                .map(|header| json!({ "name": header.name, "value": header.value }))
                .collect();
            value["payload"] = json!({
                "partId": "",
                "mimeType": mime_type(&headers),
                "filename": "",
                "headers": selected,
            });
        }
    }
    value
}

/// Renders the MIME tree of `raw` as Gmail's `payload`: each part with its `partId`,
/// `mimeType`, `filename`, headers and body, where `body.data` is the decoded content in
/// base64url.
///
/// NOTE: attachments are inlined in `body.data` (Gmail moves large ones behind an
/// `attachmentId`), and a nested message/rfc822 part stays one part with the message as data.
fn full_payload(raw: &[u8]) -> Value {
    match mail_parser::MessageParser::default().parse(raw) {
        Some(message) => part(&message, raw, 0, "", 0),
        // Not parseable as MIME: one text/plain part with the whole message as the body.
        None => json!({
            "partId": "",
            "mimeType": "text/plain",
            "filename": "",
            "headers": [],
            "body": body(raw),
        }),
    }
}

fn part(
    message: &mail_parser::Message<'_>,
    raw: &[u8],
    index: u32,
    part_id: &str,
    depth: usize,
) -> Value {
    use mail_parser::MimeHeaders as _;

    let Some(part) = message.part(index) else {
        return json!({ "partId": part_id });
    };
    let header_bytes = raw
        .get(part.raw_header_offset() as usize..part.raw_body_offset() as usize)
        .unwrap_or_default();
    let headers = parse_headers(header_bytes);
    let mut value = json!({
        "partId": part_id,
        "mimeType": mime_type(&headers),
        "filename": part.attachment_name().unwrap_or(""),
        "headers": headers
            .iter()
            .map(|header| json!({ "name": header.name, "value": header.value }))
            .collect::<Vec<_>>(),
    });
    match part.sub_parts() {
        Some(children) => {
            value["body"] = json!({ "size": 0 });
            if depth < MAX_PART_DEPTH {
                let parts: Vec<Value> = children
                    .iter()
                    .enumerate()
                    .map(|(position, child)| {
                        let child_id = if part_id.is_empty() {
                            position.to_string()
                        } else {
                            format!("{part_id}.{position}")
                        };
                        self::part(message, raw, *child, &child_id, depth + 1)
                    })
                    .collect();
                value["parts"] = Value::Array(parts);
            }
        }
        None => value["body"] = body(part.contents()),
    }
    value
}

fn body(data: &[u8]) -> Value {
    json!({
        "size": data.len(),
        "data": base64::engine::general_purpose::URL_SAFE.encode(data),
    })
}

/// Renders a label; `counts` adds the totals labels.get returns.
pub(crate) fn label(label: &Label, counts: Option<(usize, usize)>) -> Value {
    let mut value = json!({
        "id": label.id,
        "name": label.name,
        "type": label.label_type.as_str(),
        "messageListVisibility": label.message_list_visibility,
        "labelListVisibility": label.label_list_visibility,
    });
    if let Some((total, unread)) = counts {
        // Every message is its own thread here, so thread counts equal message counts.
        value["messagesTotal"] = json!(total);
        value["messagesUnread"] = json!(unread);
        value["threadsTotal"] = json!(total);
        value["threadsUnread"] = json!(unread);
    }
    value
}

/// Renders one history record with the message's labels after the change.
pub(crate) fn history_record(record: &HistoryRecord) -> Value {
    let message = message_with_labels(&record.message_id, &record.label_ids);
    let mut value = json!({
        "id": record.id.to_string(),
        "messages": [message_ref(&record.message_id)],
    });
    if record.message_added {
        value["messagesAdded"] = json!([{ "message": message }]);
    }
    if !record.labels_added.is_empty() {
        value["labelsAdded"] = json!([{ "message": message, "labelIds": record.labels_added }]);
    }
    if !record.labels_removed.is_empty() {
        value["labelsRemoved"] = json!([{ "message": message, "labelIds": record.labels_removed }]);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIPART: &[u8] = b"From: a@example.com\r\n\
Subject: parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
plain body\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>html body</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"invoice.pdf\"\r\n\
Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--outer--\r\n";

    fn decoded(part: &Value) -> Vec<u8> {
        base64::engine::general_purpose::URL_SAFE
            .decode(part["body"]["data"].as_str().expect("body data"))
            .expect("base64url")
    }

    #[test]
    fn full_payload_renders_mime_tree() {
        let payload = full_payload(MULTIPART);
        assert_eq!(payload["partId"], "");
        assert_eq!(payload["mimeType"], "multipart/mixed");
        assert_eq!(payload["headers"][1]["value"], "parts");

        let alternative = &payload["parts"][0];
        assert_eq!(alternative["partId"], "0");
        assert_eq!(alternative["mimeType"], "multipart/alternative");
        assert_eq!(alternative["parts"][0]["partId"], "0.0");
        assert_eq!(alternative["parts"][0]["mimeType"], "text/plain");
        assert_eq!(decoded(&alternative["parts"][0]), b"plain body");
        assert_eq!(alternative["parts"][1]["mimeType"], "text/html");

        let attachment = &payload["parts"][1];
        assert_eq!(attachment["partId"], "1");
        assert_eq!(attachment["filename"], "invoice.pdf");
        assert_eq!(decoded(attachment), b"%PDF-");
        assert_eq!(attachment["body"]["size"], 5);
    }

    #[test]
    fn full_payload_of_single_part_message() {
        let payload = full_payload(b"Subject: hi\r\n\r\nhello\r\n");
        assert_eq!(payload["mimeType"], "text/plain");
        assert!(payload.get("parts").is_none());
        assert_eq!(decoded(&payload), b"hello\r\n");
    }

    #[test]
    fn format_defaults_to_full() {
        assert_eq!(Format::parse(None).expect("default"), Format::Full);
        assert!(Format::parse(Some("FULL")).is_err());
    }
}

//! Renders stored state as Gmail's JSON resources: camelCase names, ids as strings, and
//! int64/uint64 values (historyId, internalDate, expiration) as decimal strings, as Google's
//! discovery documents declare them.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::Error;
use crate::history::HistoryRecord;
use crate::labels::Label;
use crate::message::{StoredMessage, mime_type, parse_headers};

/// The `format` parameter of messages.get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Minimal,
    Metadata,
    Raw,
}

impl Format {
    /// Parses `format`. Gmail's default is `full`, which this server does not build, so the
    /// default here is `metadata`, the closest subset.
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, Error> {
        match value {
            Some("minimal") => Ok(Self::Minimal),
            None | Some("metadata") => Ok(Self::Metadata),
            Some("raw") => Ok(Self::Raw),
            Some(other) => Err(Error::invalid(
                "format",
                other,
                "this local server supports raw, minimal and metadata; full is not implemented",
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

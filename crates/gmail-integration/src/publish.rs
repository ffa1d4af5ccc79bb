//! Kafka output: email events to the raw topic and feedback events to the feedback topic,
//! each acknowledged by the broker before the caller moves on.

use std::time::Duration;

use prost::Message as _;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use spamflow_proto::v1 as pb;
use spamflow_runtime::kafka::{Topics, record_key};
use spamflow_runtime::{metrics, now_ms, propagation};

/// The `source` of email events from Gmail.
pub const SOURCE_GMAIL: &str = "gmail";
/// Maximum wait for the broker's acknowledgement of one record.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends records and waits for the broker's acknowledgement.
#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topics: Topics,
}

impl Publisher {
    /// Wraps a producer configured for acks from all in-sync replicas.
    pub fn new(producer: FutureProducer, topics: Topics) -> Self {
        Self { producer, topics }
    }

    /// Publishes an email event to the raw topic under `mailbox/message_id`.
    ///
    /// # Errors
    ///
    /// Fails when the broker does not acknowledge the record.
    pub async fn email(&self, event: &pb::EmailEvent) -> anyhow::Result<()> {
        let key = record_key(&event.mailbox, &event.message_id);
        self.send(&self.topics.raw, &key, event.encode_to_vec())
            .await
    }

    /// Publishes a feedback event to the feedback topic under `mailbox/message_id`.
    ///
    /// # Errors
    ///
    /// Fails when the broker does not acknowledge the record.
    pub async fn feedback(&self, event: &pb::FeedbackEvent) -> anyhow::Result<()> {
        let key = record_key(&event.mailbox, &event.message_id);
        self.send(&self.topics.feedback, &key, event.encode_to_vec())
            .await
    }

    async fn send(&self, topic: &str, key: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(&payload)
            .headers(propagation::inject_kafka(OwnedHeaders::new()));
        match self
            .producer
            .send(record, Timeout::After(SEND_TIMEOUT))
            .await
        {
            Ok(_) => {
                metrics::global().produced(topic);
                Ok(())
            }
            Err((error, _)) => Err(anyhow::anyhow!(
                "failed to publish record {key} to topic {topic}: {error}"
            )),
        }
    }
}

/// Builds the email event of a fetched Gmail message.
pub fn email_event(mailbox: &str, message: spamflow_gmail::RawMessage) -> pb::EmailEvent {
    pb::EmailEvent {
        mailbox: mailbox.to_owned(),
        message_id: message.id,
        raw: message.raw,
        source: SOURCE_GMAIL.to_owned(),
        gmail_thread_id: message.thread_id,
        gmail_label_ids: message.label_ids,
        internal_date_ms: message.internal_date_ms,
        published_at_ms: now_ms(),
        true_label: pb::Label::Unspecified as i32,
    }
}

/// Builds the feedback event of a user's correction, with the body's fingerprints. A body
/// that does not parse gets no fingerprints but still carries the raw message.
pub fn feedback_event(
    mailbox: &str,
    message_id: &str,
    label: pb::Label,
    raw: Vec<u8>,
) -> pb::FeedbackEvent {
    let fingerprints = match spamflow_core::email::Email::parse(&raw, Default::default()) {
        Ok(email) => spamflow_runtime::convert::body_fingerprints(&email.fingerprint_text()),
        Err(error) => {
            tracing::debug!(message_id, %error, "Feedback message does not parse; no fingerprints");
            Vec::new()
        }
    };
    pb::FeedbackEvent {
        mailbox: mailbox.to_owned(),
        message_id: message_id.to_owned(),
        label: label as i32,
        fingerprints,
        raw,
        created_at_ms: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: offer\r\n\r\n\
        Buy cheap watches today and get a second watch for free with every order you place\r\n";

    #[test]
    fn email_event_carries_gmail_fields() {
        let event = email_event(
            "me@example.com",
            spamflow_gmail::RawMessage {
                id: "m1".into(),
                thread_id: "t1".into(),
                label_ids: vec!["INBOX".into(), "UNREAD".into()],
                internal_date_ms: 1_700_000_000_000,
                history_id: Some(9),
                raw: RAW.to_vec(),
            },
        );
        assert_eq!(event.source, "gmail");
        assert_eq!(event.message_id, "m1");
        assert_eq!(event.gmail_thread_id, "t1");
        assert_eq!(event.gmail_label_ids, vec!["INBOX", "UNREAD"]);
        assert_eq!(event.internal_date_ms, 1_700_000_000_000);
        assert_eq!(event.raw, RAW);
    }

    #[test]
    fn feedback_event_has_fingerprints_and_raw() {
        let event = feedback_event("me@example.com", "m1", pb::Label::Spam, RAW.to_vec());
        assert_eq!(event.label, pb::Label::Spam as i32);
        assert!(!event.fingerprints.is_empty());
        assert_eq!(event.raw, RAW);
    }

    #[test]
    fn feedback_event_of_garbage_keeps_raw() {
        let event = feedback_event("me@example.com", "m1", pb::Label::Ham, vec![0, 1, 2]);
        assert!(event.fingerprints.is_empty());
        assert_eq!(event.raw, vec![0, 1, 2]);
    }
}

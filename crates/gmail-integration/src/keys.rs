//! Store keys of the sync state. Every key starts with `gmail:` and names the mailbox, so
//! mailboxes never share state.

/// Key of a mailbox's checkpoint: the history id up to which every message is published.
pub fn checkpoint_key(mailbox: &str) -> String {
    format!("gmail:checkpoint:{mailbox}")
}

/// Key of the marker that a message of a mailbox was published and acknowledged by Kafka.
pub fn published_key(mailbox: &str, message_id: &str) -> String {
    format!("gmail:published:{mailbox}:{message_id}")
}

/// Key of the decision taken on one label change of one history record, so a history read
/// again after a restart yields no second feedback event.
pub fn feedback_decision_key(
    mailbox: &str,
    history_record_id: u64,
    message_id: &str,
    label_id: &str,
    added: bool,
) -> String {
    let sign = if added { '+' } else { '-' };
    format!("gmail:feedback:{mailbox}:{history_record_id}:{message_id}:{sign}{label_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_per_mailbox_and_change() {
        assert_eq!(checkpoint_key("a@x.org"), "gmail:checkpoint:a@x.org");
        assert_ne!(
            published_key("a@x.org", "m1"),
            published_key("b@x.org", "m1")
        );
        assert_ne!(
            feedback_decision_key("a@x.org", 7, "m1", "SPAM", true),
            feedback_decision_key("a@x.org", 7, "m1", "SPAM", false)
        );
        assert_ne!(
            feedback_decision_key("a@x.org", 7, "m1", "SPAM", true),
            feedback_decision_key("a@x.org", 8, "m1", "SPAM", true)
        );
    }
}

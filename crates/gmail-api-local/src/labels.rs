//! The labels of one mailbox: Gmail's system labels plus user labels created through
//! labels.create or named by a mailbox subfolder.

use std::collections::BTreeMap;

use crate::error::Error;

/// Label id of the inbox.
pub const INBOX: &str = "INBOX";
/// Label id of spam.
pub const SPAM: &str = "SPAM";
/// Label id of trash.
pub const TRASH: &str = "TRASH";
/// Label id of unread messages.
pub const UNREAD: &str = "UNREAD";

/// Gmail's system label ids. Their names equal their ids.
pub const SYSTEM_LABELS: [&str; 14] = [
    INBOX,
    SPAM,
    TRASH,
    UNREAD,
    "STARRED",
    "IMPORTANT",
    "SENT",
    "DRAFT",
    "CHAT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

/// Whether a label comes with Gmail or was created by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelType {
    System,
    User,
}

impl LabelType {
    /// Returns the value of Gmail's `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
        }
    }
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub id: String,
    pub name: String,
    pub label_type: LabelType,
    /// Gmail's `messageListVisibility`: `show` or `hide`.
    pub message_list_visibility: String,
    /// Gmail's `labelListVisibility`: `labelShow`, `labelShowIfUnread` or `labelHide`.
    pub label_list_visibility: String,
}

/// The labels of one mailbox, by id.
#[derive(Debug, Clone)]
pub struct Labels {
    by_id: BTreeMap<String, Label>,
    next_user_label: u64,
}

impl Default for Labels {
    fn default() -> Self {
        let by_id = SYSTEM_LABELS
            .iter()
            .map(|id| {
                let label = Label {
                    id: (*id).to_owned(),
                    name: (*id).to_owned(),
                    label_type: LabelType::System,
                    message_list_visibility: "show".to_owned(),
                    label_list_visibility: "labelShow".to_owned(),
                };
                ((*id).to_owned(), label)
            })
            .collect();
        Self {
            by_id,
            next_user_label: 1,
        }
    }
}

impl Labels {
    /// Returns every label, system labels and user labels, ordered by id.
    pub fn all(&self) -> impl Iterator<Item = &Label> {
        self.by_id.values()
    }

    /// Returns the label with `id`.
    pub fn get(&self, id: &str) -> Option<&Label> {
        self.by_id.get(id)
    }

    /// Checks whether `id` names a label of this mailbox.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Creates a user label named `name` with the id `Label_N`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty name, and [`Error::LabelExists`] when a label
    /// already has this name, compared without case as Gmail does (system names included).
    pub fn create(
        &mut self,
        name: &str,
        message_list_visibility: Option<&str>,
        label_list_visibility: Option<&str>,
    ) -> Result<Label, Error> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid(
                "label name",
                name,
                "a label needs a non-empty name",
            ));
        }
        if self.find_by_name(name).is_some() {
            return Err(Error::LabelExists(name.to_owned()));
        }
        let message_list_visibility = match message_list_visibility {
            None => "show",
            Some(value @ ("show" | "hide")) => value,
            Some(other) => {
                return Err(Error::invalid(
                    "messageListVisibility",
                    other,
                    "expected show or hide",
                ));
            }
        };
        let label_list_visibility = match label_list_visibility {
            None => "labelShow",
            Some(value @ ("labelShow" | "labelShowIfUnread" | "labelHide")) => value,
            Some(other) => {
                return Err(Error::invalid(
                    "labelListVisibility",
                    other,
                    "expected labelShow, labelShowIfUnread or labelHide",
                ));
            }
        };
        let id = loop {
            let id = format!("Label_{}", self.next_user_label);
            self.next_user_label += 1;
            if !self.by_id.contains_key(&id) {
                break id;
            }
        };
        let label = Label {
            id: id.clone(),
            name: name.to_owned(),
            label_type: LabelType::User,
            message_list_visibility: message_list_visibility.to_owned(),
            label_list_visibility: label_list_visibility.to_owned(),
        };
        self.by_id.insert(id, label.clone());
        Ok(label)
    }

    /// Returns the id of the label a mailbox subfolder named `folder` stands for: the system
    /// label or existing label with that id, else a user label with that name (created on
    /// first use).
    pub fn id_for_folder(&mut self, folder: &str) -> Result<String, Error> {
        if self.by_id.contains_key(folder) {
            return Ok(folder.to_owned());
        }
        if let Some(label) = self.find_by_name(folder) {
            return Ok(label.id.clone());
        }
        Ok(self.create(folder, None, None)?.id)
    }

    /// Finds a label by name without case, as Gmail compares names.
    pub fn find_by_name(&self, name: &str) -> Option<&Label> {
        self.by_id
            .values()
            .find(|label| label.name.eq_ignore_ascii_case(name))
    }

    /// Finds the label a `label:NAME` search term means. Gmail writes spaces and slashes in
    /// label names as `-` in queries, so both spellings match.
    pub fn find_for_query(&self, name: &str) -> Option<&Label> {
        let spelling = query_spelling(name);
        self.by_id.values().find(|label| {
            query_spelling(&label.name) == spelling || label.id.eq_ignore_ascii_case(name)
        })
    }
}

fn query_spelling(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' ' | '/' => '-',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_rejects_duplicate_names() {
        let mut labels = Labels::default();
        let label = labels.create("Receipts", None, None).expect("first create");
        assert_eq!(label.id, "Label_1");
        assert_eq!(label.label_type, LabelType::User);
        assert!(matches!(
            labels.create("receipts", None, None),
            Err(Error::LabelExists(name)) if name == "receipts"
        ));
        assert!(matches!(
            labels.create("Spam", None, None),
            Err(Error::LabelExists(_))
        ));
        assert_eq!(
            labels.create("Other", None, None).expect("second").id,
            "Label_2"
        );
    }

    #[test]
    fn create_rejects_empty_name_and_bad_visibility() {
        let mut labels = Labels::default();
        assert!(matches!(
            labels.create("  ", None, None),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            labels.create("x", Some("sometimes"), None),
            Err(Error::InvalidArgument {
                name: "messageListVisibility",
                ..
            })
        ));
    }

    #[test]
    fn folder_names_map_to_system_or_user_labels() {
        let mut labels = Labels::default();
        assert_eq!(labels.id_for_folder("SPAM").expect("system"), "SPAM");
        let id = labels.id_for_folder("Newsletters").expect("user");
        assert_eq!(id, "Label_1");
        assert_eq!(labels.id_for_folder("Newsletters").expect("again"), id);
    }

    #[test]
    fn query_names_use_dashes() {
        let mut labels = Labels::default();
        labels.create("Work/Old Stuff", None, None).expect("create");
        assert_eq!(
            labels
                .find_for_query("work-old-stuff")
                .map(|l| l.id.as_str()),
            Some("Label_1")
        );
        assert_eq!(
            labels.find_for_query("spam").map(|l| l.id.as_str()),
            Some("SPAM")
        );
        assert!(labels.find_for_query("missing").is_none());
    }
}

//! The action policy: which change, if any, a verdict makes in the mailbox. Pure logic with no
//! I/O, so every rule is unit-tested here.
//!
//! A verdict falls into one of three bands:
//!
//! - **spam**: the verdict's label is SPAM and, when `--spam-threshold` is set, its spam
//!   probability is at least that threshold. It gets the spam action (`--spam-action`): move
//!   to SPAM, add the suspect label, or log only.
//! - **suspect**: a SPAM verdict below `--spam-threshold`, or any verdict whose probability is
//!   at least `--suspect-threshold`. It gets the suspect label (`--suspect-label`).
//! - **clean**: everything else, which is only logged.
//!
//! Without `--spam-threshold` the verdict's label alone decides the spam band. The label
//! already combines the model's own threshold with the Bloom filter, so a message whose body
//! is a known spam fingerprint is spam even when the model scores it low.

use std::fmt;

use spamflow_core::Label;

/// Default name of the label added to suspected spam.
pub const DEFAULT_SUSPECT_LABEL: &str = "spamflow/suspected";
/// Gmail's id of the spam folder label.
pub const LABEL_SPAM: &str = "SPAM";
/// Gmail's id of the inbox label.
pub const LABEL_INBOX: &str = "INBOX";
/// Maximum length of a label name, in characters.
///
/// NOTE: the Gmail API reference states no maximum, so this limit is spamflow's own guess, and
/// Gmail may still reject a shorter name when the label is created.
pub const MAX_LABEL_NAME_CHARS: usize = 225;

/// Names of Gmail's system labels, which Gmail does not let a user label take. spamflow
/// rejects them in any letter case.
const SYSTEM_LABEL_NAMES: [&str; 9] = [
    "INBOX",
    "SPAM",
    "TRASH",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "SENT",
    "DRAFT",
    "CHAT",
];

/// The action for verdicts in the spam band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpamAction {
    /// Add SPAM and remove INBOX, which moves the message to Gmail's Spam folder.
    MoveToSpam,
    /// Add the suspect label and leave the message where it is.
    Label,
    /// Change nothing and only log the verdict.
    Log,
}

/// A change the policy requests in the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Add SPAM and remove INBOX.
    MoveToSpam,
    /// Add the user label with this name, created if missing.
    AddLabel(LabelName),
}

impl Action {
    /// Returns the action's kind, used in idempotency keys, metrics and spans.
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::MoveToSpam => ActionKind::MoveToSpam,
            Self::AddLabel(_) => ActionKind::Label,
        }
    }
}

/// The kind of an [`Action`], without its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    MoveToSpam,
    Label,
}

impl ActionKind {
    /// Returns the stable snake_case name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MoveToSpam => "move_to_spam",
            Self::Label => "label",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The band a verdict falls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    Spam,
    Suspect,
    Clean,
}

impl Band {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spam => "spam",
            Self::Suspect => "suspect",
            Self::Clean => "clean",
        }
    }
}

/// The policy's decision for one verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub band: Band,
    /// The change to make, or `None` to only log the verdict.
    pub action: Option<Action>,
}

/// The validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    spam_action: SpamAction,
    spam_threshold: Option<f64>,
    suspect_threshold: Option<f64>,
    suspect_label: LabelName,
}

/// A policy setting that is invalid on its own or together with another.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "invalid {flag} {value}: a probability must be between 0 and 1; pass a value such as 0.7"
    )]
    ThresholdOutOfRange { flag: &'static str, value: f64 },
    #[error(
        "invalid --suspect-threshold {suspect}: it must be below --spam-threshold {spam}, \
         because the suspect band lies below the spam band; lower --suspect-threshold or \
         raise --spam-threshold"
    )]
    SuspectNotBelowSpam { suspect: f64, spam: f64 },
    #[error("invalid label name {name:?}: {reason}")]
    InvalidLabelName { name: String, reason: String },
}

impl Policy {
    /// Builds a policy, checking that each threshold is a probability and that the suspect
    /// band lies below the spam band.
    ///
    /// # Errors
    ///
    /// Returns [`PolicyError`] naming the flag and value that break a rule.
    pub fn new(
        spam_action: SpamAction,
        spam_threshold: Option<f64>,
        suspect_threshold: Option<f64>,
        suspect_label: LabelName,
    ) -> Result<Self, PolicyError> {
        if let Some(value) = spam_threshold {
            check_probability("--spam-threshold", value)?;
        }
        if let Some(value) = suspect_threshold {
            check_probability("--suspect-threshold", value)?;
        }
        if let (Some(suspect), Some(spam)) = (suspect_threshold, spam_threshold)
            && suspect >= spam
        {
            return Err(PolicyError::SuspectNotBelowSpam { suspect, spam });
        }
        Ok(Self {
            spam_action,
            spam_threshold,
            suspect_threshold,
            suspect_label,
        })
    }

    /// Returns the name of the label that suspect verdicts get.
    pub fn suspect_label(&self) -> &LabelName {
        &self.suspect_label
    }

    /// Decides what a verdict with `label` and spam `probability` changes in the mailbox.
    /// A NaN probability is below every threshold.
    pub fn decide(&self, label: Label, probability: f64) -> Decision {
        let band = self.band(label, probability);
        let action = match band {
            Band::Spam => match self.spam_action {
                SpamAction::MoveToSpam => Some(Action::MoveToSpam),
                SpamAction::Label => Some(Action::AddLabel(self.suspect_label.clone())),
                SpamAction::Log => None,
            },
            Band::Suspect => Some(Action::AddLabel(self.suspect_label.clone())),
            Band::Clean => None,
        };
        Decision { band, action }
    }

    fn band(&self, label: Label, probability: f64) -> Band {
        let spam_label = label == Label::Spam;
        let above_spam_threshold = self
            .spam_threshold
            .is_none_or(|threshold| probability >= threshold);
        if spam_label && above_spam_threshold {
            return Band::Spam;
        }
        let above_suspect_threshold = self
            .suspect_threshold
            .is_some_and(|threshold| probability >= threshold);
        if spam_label || above_suspect_threshold {
            Band::Suspect
        } else {
            Band::Clean
        }
    }
}

fn check_probability(flag: &'static str, value: f64) -> Result<(), PolicyError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(PolicyError::ThresholdOutOfRange { flag, value })
    }
}

pub use spamflow_runtime::cli::parse_probability;

/// A valid name for a Gmail user label, such as `spamflow/suspected`. A `/` nests the label
/// under its parent in Gmail's label list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelName(String);

impl LabelName {
    /// Checks `name` against the rules spamflow applies to user label names: not empty, at most
    /// [`MAX_LABEL_NAME_CHARS`] characters, no control characters, no leading or trailing
    /// space, no empty part between slashes, and not the name of a system label.
    ///
    /// # Errors
    ///
    /// Returns [`PolicyError::InvalidLabelName`] with the rule the name breaks.
    pub fn parse(name: &str) -> Result<Self, PolicyError> {
        let invalid = |reason: &str| PolicyError::InvalidLabelName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid(
                "the name is empty; pass a name such as spamflow/suspected",
            ));
        }
        if name.chars().count() > MAX_LABEL_NAME_CHARS {
            return Err(invalid(&format!(
                "the name is longer than {MAX_LABEL_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("the name contains a control character"));
        }
        if name.split('/').any(|part| part.trim().is_empty()) {
            return Err(invalid(
                "a part between slashes is empty or blank; write nested labels as parent/child",
            ));
        }
        if name.trim() != name {
            return Err(invalid("the name starts or ends with white space"));
        }
        let upper = name.to_uppercase();
        if SYSTEM_LABEL_NAMES.contains(&upper.as_str()) || upper.starts_with("CATEGORY_") {
            return Err(invalid(
                "the name is reserved for a Gmail system label; choose another name",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a label name flag value for clap, so a bad value exits 64 naming the flag.
///
/// # Errors
///
/// Returns the rule the name breaks.
pub fn parse_label_name(text: &str) -> Result<LabelName, String> {
    LabelName::parse(text).map_err(|error| match error {
        PolicyError::InvalidLabelName { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// The label ids a change adds and removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelChanges {
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl LabelChanges {
    /// Keeps only what would really change a message that has `current` labels: labels to
    /// add that it lacks, and labels to remove that it has.
    pub fn against(&self, current: &[String]) -> Self {
        let has = |label: &String| current.iter().any(|present| present == label);
        Self {
            add: self
                .add
                .iter()
                .filter(|label| !has(label))
                .cloned()
                .collect(),
            remove: self
                .remove
                .iter()
                .filter(|label| has(label))
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Returns every changed label id, paired with true when it is added and false when removed.
    pub fn each(&self) -> impl Iterator<Item = (&str, bool)> {
        let added = self.add.iter().map(|label| (label.as_str(), true));
        let removed = self.remove.iter().map(|label| (label.as_str(), false));
        added.chain(removed)
    }
}

impl fmt::Display for LabelChanges {
    /// Formats as `+SPAM -INBOX`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (label, added) in self.each() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{}{label}", if added { '+' } else { '-' })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str) -> LabelName {
        LabelName::parse(name).unwrap()
    }

    fn policy(
        spam_action: SpamAction,
        spam_threshold: Option<f64>,
        suspect_threshold: Option<f64>,
    ) -> Policy {
        Policy::new(
            spam_action,
            spam_threshold,
            suspect_threshold,
            label(DEFAULT_SUSPECT_LABEL),
        )
        .unwrap()
    }

    fn suspect() -> Option<Action> {
        Some(Action::AddLabel(label(DEFAULT_SUSPECT_LABEL)))
    }

    #[test]
    fn default_policy_moves_spam_verdicts() {
        let policy = policy(SpamAction::MoveToSpam, None, None);
        let spam = policy.decide(Label::Spam, 0.01);
        assert_eq!(spam.band, Band::Spam);
        assert_eq!(spam.action, Some(Action::MoveToSpam));
        let ham = policy.decide(Label::Ham, 0.99);
        assert_eq!(ham.band, Band::Clean);
        assert_eq!(ham.action, None);
    }

    #[test]
    fn spam_action_picks_the_spam_band_action() {
        let labelled = policy(SpamAction::Label, None, None).decide(Label::Spam, 0.99);
        assert_eq!(labelled.action, suspect());
        let logged = policy(SpamAction::Log, None, None).decide(Label::Spam, 0.99);
        assert_eq!(logged.band, Band::Spam);
        assert_eq!(logged.action, None);
    }

    #[test]
    fn suspect_threshold_labels_ham_above_it() {
        let policy = policy(SpamAction::MoveToSpam, None, Some(0.6));
        let above = policy.decide(Label::Ham, 0.6);
        assert_eq!(above.band, Band::Suspect);
        assert_eq!(above.action, suspect());
        let below = policy.decide(Label::Ham, 0.59);
        assert_eq!(below.band, Band::Clean);
        assert_eq!(below.action, None);
    }

    #[test]
    fn spam_below_spam_threshold_is_suspect() {
        let policy = policy(SpamAction::MoveToSpam, Some(0.95), Some(0.7));
        assert_eq!(
            policy.decide(Label::Spam, 0.95).action,
            Some(Action::MoveToSpam)
        );
        let weak = policy.decide(Label::Spam, 0.5);
        assert_eq!(weak.band, Band::Suspect);
        assert_eq!(weak.action, suspect());
        assert_eq!(policy.decide(Label::Ham, 0.96).band, Band::Suspect);
        assert_eq!(policy.decide(Label::Ham, 0.69).band, Band::Clean);
    }

    #[test]
    fn nan_probability_is_below_every_threshold() {
        let policy = policy(SpamAction::MoveToSpam, Some(0.9), Some(0.5));
        assert_eq!(policy.decide(Label::Ham, f64::NAN).band, Band::Clean);
        assert_eq!(policy.decide(Label::Spam, f64::NAN).band, Band::Suspect);
    }

    #[test]
    fn thresholds_outside_unit_interval_are_rejected() {
        let name = label(DEFAULT_SUSPECT_LABEL);
        for value in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
            let error =
                Policy::new(SpamAction::MoveToSpam, Some(value), None, name.clone()).unwrap_err();
            assert!(
                matches!(
                    error,
                    PolicyError::ThresholdOutOfRange {
                        flag: "--spam-threshold",
                        ..
                    }
                ),
                "{error}"
            );
            let error =
                Policy::new(SpamAction::MoveToSpam, None, Some(value), name.clone()).unwrap_err();
            assert!(
                matches!(
                    error,
                    PolicyError::ThresholdOutOfRange {
                        flag: "--suspect-threshold",
                        ..
                    }
                ),
                "{error}"
            );
        }
    }

    #[test]
    fn suspect_threshold_must_be_below_spam_threshold() {
        let name = label(DEFAULT_SUSPECT_LABEL);
        for (suspect, spam) in [(0.9, 0.9), (0.95, 0.9)] {
            let error = Policy::new(
                SpamAction::MoveToSpam,
                Some(spam),
                Some(suspect),
                name.clone(),
            )
            .unwrap_err();
            assert_eq!(error, PolicyError::SuspectNotBelowSpam { suspect, spam });
            assert!(error.to_string().contains("--suspect-threshold"), "{error}");
        }
    }

    #[test]
    fn probability_flag_parser_checks_range() {
        assert_eq!(parse_probability("0.25"), Ok(0.25));
        assert_eq!(parse_probability("1"), Ok(1.0));
        assert!(
            parse_probability("1.5")
                .unwrap_err()
                .contains("outside [0, 1]")
        );
        assert!(
            parse_probability("NaN")
                .unwrap_err()
                .contains("outside [0, 1]")
        );
        assert!(
            parse_probability("high")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn label_names_follow_gmail_rules() {
        for valid in [
            "spamflow/suspected",
            "Junk?",
            "a/b/c",
            "Spam-ish",
            "spam/inbox",
        ] {
            assert!(LabelName::parse(valid).is_ok(), "{valid}");
        }
        let cases = [
            ("", "empty"),
            ("/spamflow", "empty or blank"),
            ("spamflow/", "empty or blank"),
            ("a//b", "empty or blank"),
            ("a/ /b", "empty or blank"),
            (" spamflow", "white space"),
            ("spam\nflow", "control character"),
            ("SPAM", "reserved"),
            ("inbox", "reserved"),
            ("Category_Social", "reserved"),
        ];
        for (name, reason) in cases {
            let error = LabelName::parse(name).unwrap_err().to_string();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
        let long = "x".repeat(MAX_LABEL_NAME_CHARS + 1);
        assert!(
            LabelName::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
        assert!(LabelName::parse(&long[1..]).is_ok());
    }

    #[test]
    fn label_changes_keep_only_real_changes() {
        let requested = LabelChanges {
            add: vec!["SPAM".into()],
            remove: vec!["INBOX".into()],
        };
        let in_inbox = requested.against(&["INBOX".into(), "UNREAD".into()]);
        assert_eq!(in_inbox, requested);
        assert_eq!(in_inbox.to_string(), "+SPAM -INBOX");

        let archived = requested.against(&["UNREAD".into()]);
        assert_eq!(archived.add, vec!["SPAM".to_owned()]);
        assert!(archived.remove.is_empty());

        let done = requested.against(&["SPAM".into()]);
        assert!(done.is_empty());
        assert_eq!(done.to_string(), "none");
    }
}

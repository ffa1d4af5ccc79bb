//! Flags of the action policy, turned into a validated [`Policy`] once at startup, and the
//! checks that span several flags.

use spamflow_gmail::{GmailArgs, GmailError};

use crate::policy::{
    DEFAULT_SUSPECT_LABEL, LabelName, Policy, PolicyError, SpamAction, parse_label_name,
    parse_probability,
};

/// Flags that choose what the action handler changes in Gmail mailboxes.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Act on Gmail: on or off. Off only logs and records each verdict.
    #[arg(
        long,
        env = "SPAMFLOW_GMAIL_ACTIONS",
        value_name = "on|off",
        hide_possible_values = true,
        default_value = "off",
        num_args = 0..=1,
        default_missing_value = "on",
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub gmail_actions: bool,
    /// Action for verdicts in the spam band: move-to-spam (add SPAM, remove INBOX), label (add
    /// the suspect label) or log.
    #[arg(
        long,
        env = "SPAMFLOW_SPAM_ACTION",
        value_enum,
        default_value = "move-to-spam"
    )]
    pub spam_action: SpamAction,
    /// Lowest spam probability, between 0 and 1, at which a SPAM verdict gets the spam action.
    /// SPAM verdicts below it get the suspect label. Unset: every SPAM verdict gets the spam
    /// action.
    #[arg(long, env = "SPAMFLOW_SPAM_THRESHOLD", value_name = "PROBABILITY", value_parser = parse_probability)]
    pub spam_threshold: Option<f64>,
    /// Lowest spam probability, between 0 and 1, at which any verdict gets the suspect label.
    /// Must be below --spam-threshold. Unset: only SPAM verdicts below --spam-threshold get
    /// the label.
    #[arg(long, env = "SPAMFLOW_SUSPECT_THRESHOLD", value_name = "PROBABILITY", value_parser = parse_probability)]
    pub suspect_threshold: Option<f64>,
    /// Name of the Gmail user label for suspected spam, created if missing. A `/` nests it
    /// under a parent label.
    #[arg(
        long,
        env = "SPAMFLOW_SUSPECT_LABEL",
        value_name = "NAME",
        default_value = DEFAULT_SUSPECT_LABEL,
        value_parser = parse_label_name,
    )]
    pub suspect_label: LabelName,
    /// Log each change the handler would make in Gmail, without making it or creating labels.
    #[arg(long, env = "SPAMFLOW_DRY_RUN")]
    pub dry_run: bool,
}

impl Default for PolicyArgs {
    /// Gmail actions off, and the defaults of every flag.
    fn default() -> Self {
        Self {
            gmail_actions: false,
            spam_action: SpamAction::MoveToSpam,
            spam_threshold: None,
            suspect_threshold: None,
            suspect_label: LabelName::parse(DEFAULT_SUSPECT_LABEL)
                .expect("the default suspect label follows Gmail's naming rules"),
            dry_run: false,
        }
    }
}

impl PolicyArgs {
    /// Builds the policy these flags describe.
    ///
    /// # Errors
    ///
    /// Returns [`PolicyError`] when a threshold is not a probability or the suspect threshold
    /// is not below the spam threshold.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        Policy::new(
            self.spam_action,
            self.spam_threshold,
            self.suspect_threshold,
            self.suspect_label.clone(),
        )
    }
}

/// A combination of flags that cannot work. The binary exits 64 with it.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(
        "--dry-run (SPAMFLOW_DRY_RUN) needs --gmail-actions on, because with Gmail actions off \
         the handler changes nothing anyway"
    )]
    DryRunWithoutGmail,
    #[error("--gmail-actions on needs a usable Gmail client: {0}")]
    Gmail(#[from] GmailError),
    #[error("invalid value 0 for {flag} ({variable}): {reason}; pass 1 or more")]
    Zero {
        flag: &'static str,
        variable: &'static str,
        reason: &'static str,
    },
    #[error(
        "--gmail-retry-base-ms {base} (SPAMFLOW_GMAIL_RETRY_BASE_MS) is above \
         --gmail-retry-max-ms {max} (SPAMFLOW_GMAIL_RETRY_MAX_MS), so no retry could wait the \
         base delay; pass a base of at most the maximum"
    )]
    RetryBaseAboveMax { base: u64, max: u64 },
}

/// Checks the rules that span several flags, which clap cannot check one flag at a time. With
/// Gmail actions on, it also reads the credentials file to learn its kind.
///
/// # Errors
///
/// Returns the first [`FlagError`] found.
pub fn check_flags(policy: &PolicyArgs, gmail: &GmailArgs) -> Result<(), FlagError> {
    policy.policy()?;
    check_gmail_numbers(gmail)?;
    if !policy.gmail_actions {
        if policy.dry_run {
            return Err(FlagError::DryRunWithoutGmail);
        }
        return Ok(());
    }
    gmail.check()?;
    Ok(())
}

/// Checks the Gmail client's numeric flags, whose parsers in spamflow-gmail accept 0. They are
/// checked with Gmail actions off too, since a bad value is wrong either way.
fn check_gmail_numbers(gmail: &GmailArgs) -> Result<(), FlagError> {
    let at_least_one = [
        (
            "--gmail-quota-units-per-second",
            "SPAMFLOW_GMAIL_QUOTA_UNITS_PER_SECOND",
            u64::from(gmail.quota_units_per_second),
            "a mailbox with no quota could never send a call",
        ),
        (
            "--gmail-max-attempts",
            "SPAMFLOW_GMAIL_MAX_ATTEMPTS",
            u64::from(gmail.max_attempts),
            "the first attempt counts, so 0 would send nothing",
        ),
        (
            "--gmail-request-timeout-ms",
            "SPAMFLOW_GMAIL_REQUEST_TIMEOUT_MS",
            gmail.request_timeout_ms,
            "every request would time out at once",
        ),
    ];
    for (flag, variable, value, reason) in at_least_one {
        if value == 0 {
            return Err(FlagError::Zero {
                flag,
                variable,
                reason,
            });
        }
    }
    if gmail.retry_base_ms > gmail.retry_max_ms {
        return Err(FlagError::RetryBaseAboveMax {
            base: gmail.retry_base_ms,
            max: gmail.retry_max_ms,
        });
    }
    Ok(())
}

//! Fault switches that tests set through `POST /control/faults` to make Gmail API calls fail
//! or slow down on purpose.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The fault switches. A `POST /control/faults` replaces all of them, so `{}` clears every
/// fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Count of the next Gmail API calls that return 429 RESOURCE_EXHAUSTED.
    #[serde(default)]
    pub status_429: u32,
    /// Count of the next Gmail API calls (after the 429s) that return 500 INTERNAL.
    #[serde(default)]
    pub status_500: u32,
    /// While set, every history.list call returns 404 NOT_FOUND.
    #[serde(default)]
    pub history_404: bool,
    /// Delay in milliseconds added before the response to every Gmail API call.
    #[serde(default)]
    pub delay_ms: u64,
    /// Lifetime in seconds of access tokens issued from now on; `None` means 3600.
    #[serde(default)]
    pub token_expires_in: Option<u64>,
}

impl Faults {
    /// Consumes one injected failure for a Gmail API call, 429s first, and returns it.
    pub fn take_status(&mut self) -> Option<Error> {
        if self.status_429 > 0 {
            self.status_429 -= 1;
            return Some(Error::RateLimitFault);
        }
        if self.status_500 > 0 {
            self.status_500 -= 1;
            return Some(Error::BackendFault);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_consumed_one_per_call() {
        let mut faults = Faults {
            status_429: 1,
            status_500: 2,
            ..Faults::default()
        };
        assert!(matches!(faults.take_status(), Some(Error::RateLimitFault)));
        assert!(matches!(faults.take_status(), Some(Error::BackendFault)));
        assert!(matches!(faults.take_status(), Some(Error::BackendFault)));
        assert!(faults.take_status().is_none());
    }

    #[test]
    fn unknown_switches_are_rejected() {
        let error =
            serde_json::from_str::<Faults>(r#"{"status_503": 1}"#).expect_err("unknown field");
        assert!(error.to_string().contains("status_503"), "{error}");
        let cleared: Faults = serde_json::from_str("{}").expect("empty object");
        assert_eq!(cleared, Faults::default());
    }
}

//! Helpers shared by the integration tests: a mailbox folder made from the demo mail, and
//! authenticated calls to the server.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::path::{Path, PathBuf};

use serde_json::Value;
use spamflow_testkit::{GmailApi, http_send};

/// The default mailbox of the test folders.
pub const ME: &str = "me@example.com";
/// The second mailbox of the test folders.
pub const OTHER: &str = "other@example.com";

/// Top-level files: INBOX and UNREAD.
pub const INBOX_FILES: [&str; 4] = [
    "0001-team-standup.eml",
    "0002-invoice-receipt.eml",
    "0004-password-reset-phish.eml",
    "0005-code-review.eml",
];
/// Files under SPAM/.
pub const SPAM_FILES: [&str; 2] = ["0003-lottery-winner.eml", "0006-pharmacy-spam.eml"];

/// Returns the demo mailbox folder of the repository.
pub fn demo_mailbox() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/demo/mailbox")
}

/// Reads one demo message.
pub fn demo_message(name: &str) -> Vec<u8> {
    let path = demo_mailbox().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()))
}

/// Builds a mailbox folder from the demo mail: four INBOX files, two under SPAM/, and one
/// file in the mailbox `other@example.com`.
pub fn mailbox_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("failed to create a temp folder");
    for name in INBOX_FILES {
        std::fs::write(dir.path().join(name), demo_message(name)).expect("write inbox file");
    }
    std::fs::create_dir(dir.path().join("SPAM")).expect("mkdir SPAM");
    for name in SPAM_FILES {
        std::fs::write(dir.path().join("SPAM").join(name), demo_message(name))
            .expect("write spam file");
    }
    let other = dir.path().join(OTHER);
    std::fs::create_dir(&other).expect("mkdir other mailbox");
    std::fs::write(other.join(INBOX_FILES[0]), demo_message(INBOX_FILES[0])).expect("write");
    dir
}

/// Calls the server with a bearer token and an optional JSON body; returns the status and
/// the parsed body (`Null` when empty).
pub fn call(
    api: &GmailApi,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let authorization = format!("Bearer {token}");
    let body = body.map(|value| value.to_string()).unwrap_or_default();
    let mut headers = vec![("Authorization", authorization.as_str())];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    let response = http_send(api.port, method, path, &headers, body.as_bytes())
        .unwrap_or_else(|error| panic!("{method} {path} failed: {error:#}"));
    let value = if response.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&response.body).unwrap_or_else(|error| {
            panic!(
                "{method} {path} returned invalid JSON ({error}): {}",
                response.body
            )
        })
    };
    (response.status, value)
}

/// Asserts that `value` is a Google error with `code` and returns its message.
pub fn google_error(value: &Value, code: u16) -> String {
    assert_eq!(value["error"]["code"], code, "error body: {value}");
    assert!(value["error"]["status"].is_string(), "error body: {value}");
    value["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error without message: {value}"))
        .to_owned()
}

/// Returns the ids of a messages.list response.
pub fn listed_ids(value: &Value) -> Vec<String> {
    value["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|message| message["id"].as_str().expect("id is a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

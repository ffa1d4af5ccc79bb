//! The `gmail-integration` binary on bad flags and unusable credentials: exit code 64 (or 1
//! for a file that fails at run time) with a message naming the problem.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gmail-integration"));
    for (name, _) in std::env::vars() {
        if name.starts_with("SPAMFLOW_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("SPAMFLOW_KAFKA_BROKERS", "127.0.0.1:9")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn invalid_flags_exit_64_naming_them() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--gmail-fetch-concurrency", "0"],
            "--gmail-fetch-concurrency",
        ),
        (
            &["--gmail-fetch-concurrency", "many"],
            "--gmail-fetch-concurrency",
        ),
        (
            &["--gmail-pubsub-topic", "gmail-topic"],
            "projects/PROJECT/topics/TOPIC",
        ),
        (
            &["--gmail-pubsub-topic", "projects/p/topics/t"],
            "--gmail-push-token",
        ),
        (&["--gmail-mailboxes", "not-an-address"], "not-an-address"),
    ];
    for (args, expected) in cases {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn missing_credentials_file_exits_64_naming_it() {
    let output = run(&["--gmail-credentials-file", "/nonexistent/credentials.json"]);
    assert_eq!(output.status.code(), Some(64), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("/nonexistent/credentials.json"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn installed_app_without_token_advises_auth() {
    let dir = tempfile::tempdir().unwrap();
    let client = dir.path().join("client.json");
    std::fs::write(
        &client,
        r#"{"installed":{"client_id":"c","client_secret":"very-secret-value",
            "auth_uri":"http://127.0.0.1:9/o/oauth2/auth","token_uri":"http://127.0.0.1:9/token",
            "redirect_uris":["http://localhost"]}}"#,
    )
    .unwrap();
    let token = dir.path().join("token.json");
    let output = run(&[
        "--gmail-credentials-file",
        client.to_str().unwrap(),
        "--gmail-token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("gmail-integration auth"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("very-secret-value"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn service_account_key_needs_no_sign_in() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spamflow-testkit/data/service-account-template.json"
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.json");
    let output = run(&[
        "auth",
        "--gmail-credentials-file",
        key,
        "--gmail-token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("needs no sign-in"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("PRIVATE KEY"),
        "{}",
        stderr(&output)
    );
}

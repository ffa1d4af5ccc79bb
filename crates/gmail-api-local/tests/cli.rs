//! The gmail-api-local binary's flags: help, usage errors and a bad mailbox folder.

use std::process::Command;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gmail-api-local"));
    for variable in [
        "SPAMFLOW_LISTEN_ADDR",
        "SPAMFLOW_MAILBOX_DIR",
        "SPAMFLOW_MAILBOX_EMAIL",
        "SPAMFLOW_PUSH_ENDPOINT",
        "SPAMFLOW_PUSH_TOKEN",
    ] {
        command.env_remove(variable);
    }
    command
}

#[test]
fn help_lists_flags_and_env() {
    let output = binary().arg("--help").output().expect("run");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen-addr",
        "SPAMFLOW_LISTEN_ADDR",
        "--mailbox-dir",
        "--email",
        "--push-endpoint",
        "--push-token",
    ] {
        assert!(help.contains(flag), "help lacks {flag}: {help}");
    }
}

#[test]
fn bad_flags_exit_64_naming_them() {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = folder.path().to_str().expect("utf-8 path");
    for (args, named) in [
        (vec!["--mailbox-dir", dir, "--bogus"], "--bogus"),
        (vec![], "--mailbox-dir"),
        (
            vec!["--mailbox-dir", dir, "--listen-addr", "nowhere"],
            "--listen-addr",
        ),
        (
            vec!["--mailbox-dir", dir, "--push-endpoint", "https://x/"],
            "--push-endpoint",
        ),
        (
            vec!["--mailbox-dir", dir, "--email", "not-an-address"],
            "--email",
        ),
        (
            vec!["--mailbox-dir", dir, "--history-retention", "0"],
            "--history-retention",
        ),
    ] {
        let output = binary().args(&args).output().expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?} should name {named}: {stderr}"
        );
    }
}

#[test]
fn missing_mailbox_folder_exits_1() {
    let folder = tempfile::tempdir().expect("tempdir");
    let missing = folder.path().join("missing");
    let output = binary()
        .arg("--mailbox-dir")
        .arg(&missing)
        .args(["--listen-addr", "127.0.0.1:0"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(stderr.contains("SPAMFLOW_MAILBOX_DIR"), "{stderr}");
}

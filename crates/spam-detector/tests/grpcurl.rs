//! The spam-detector binary over gRPC, driven by the real grpcurl through server reflection.

use std::process::Command;

use spamflow_testkit::{ChildGuard, free_port, grpcurl_binary, wait_for_port, workspace_binary};

struct Detector {
    address: String,
    _process: ChildGuard,
}

fn start_detector(extra_env: &[(&str, &str)]) -> Detector {
    let port = free_port().unwrap();
    let mut command = Command::new(workspace_binary("spam-detector").unwrap());
    command.env("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{port}"));
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let mut process = ChildGuard::spawn("spam-detector", command).unwrap();
    wait_for_port(
        ([127, 0, 0, 1], port).into(),
        process.child_mut(),
        "spam-detector",
    )
    .unwrap();
    Detector {
        address: format!("127.0.0.1:{port}"),
        _process: process,
    }
}

/// Runs grpcurl with plaintext against the detector and returns (success, stdout, stderr).
fn grpcurl(detector: &Detector, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(grpcurl_binary().unwrap())
        .arg("-plaintext")
        .args(args.iter().take(args.len().saturating_sub(1)))
        .arg(&detector.address)
        .args(args.last())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn grpcurl_lists_services_by_reflection() {
    let detector = start_detector(&[]);
    let output = Command::new(grpcurl_binary().unwrap())
        .args(["-plaintext", &detector.address, "list"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for service in ["spamflow.v1.SpamDetector", "grpc.health.v1.Health"] {
        assert!(
            stdout.lines().any(|line| line == service),
            "{service} missing from:\n{stdout}"
        );
    }
}

#[test]
fn grpcurl_classifies_plain_text() {
    let detector = start_detector(&[]);
    let request = r#"{"text": "URGENT! You have won a FREE cash prize. Click here now to claim your money, limited time offer!", "message_id": "adhoc-1"}"#;
    let (ok, stdout, stderr) = grpcurl(
        &detector,
        &["-d", request, "spamflow.v1.SpamDetector/Classify"],
    );
    assert!(ok, "{stderr}");
    let response: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(response["label"], "LABEL_SPAM", "{stdout}");
    assert_eq!(response["messageId"], "adhoc-1");
    assert!(response["spamProbability"].as_f64().unwrap() > 0.5);
    assert!(
        response["modelVersion"]
            .as_str()
            .unwrap()
            .starts_with("lr2-")
    );
    assert!(
        response["topFeatures"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{stdout}"
    );
}

#[test]
fn grpcurl_gets_invalid_argument_for_bad_requests() {
    let detector = start_detector(&[("SPAMFLOW_MAX_MESSAGE_BYTES", "64")]);
    let cases = [
        (r#"{}"#, "content is missing"),
        (r#"{"text": "   "}"#, "text: message is empty"),
        (
            r#"{"raw": "aGVsbG8gdGhlcmUsIG5vdCBhbiBlbWFpbA=="}"#,
            "raw: not an RFC 5322 message",
        ),
        (
            r#"{"text": "this plain text is longer than the sixty-four byte limit that the server has"}"#,
            "above the limit of 64 bytes",
        ),
    ];
    for (request, expected) in cases {
        let (ok, _, stderr) = grpcurl(
            &detector,
            &["-d", request, "spamflow.v1.SpamDetector/Classify"],
        );
        assert!(!ok, "{request} succeeded");
        assert!(stderr.contains("InvalidArgument"), "{request}: {stderr}");
        assert!(stderr.contains(expected), "{request}: {stderr}");
    }
}

#[test]
fn grpcurl_health_check_is_serving() {
    let detector = start_detector(&[]);
    let (ok, stdout, stderr) = grpcurl(
        &detector,
        &[
            "-d",
            r#"{"service": "spamflow.v1.SpamDetector"}"#,
            "grpc.health.v1.Health/Check",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("SERVING"), "{stdout}");
}

#[test]
fn bad_flag_exits_64_naming_it() {
    let output = Command::new(workspace_binary("spam-detector").unwrap())
        .arg("--listen-addr")
        .arg("not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--listen-addr"), "{stderr}");
}

#[test]
fn missing_model_file_fails_start() {
    let output = Command::new(workspace_binary("spam-detector").unwrap())
        .env("SPAMFLOW_LISTEN_ADDR", "127.0.0.1:0")
        .env("SPAMFLOW_MODEL_PATH", "/nonexistent/model.json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/model.json"), "{stderr}");
}

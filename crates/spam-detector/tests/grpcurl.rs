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
    for (flag, value) in [("--listen-addr", "not-an-address"), ("--model-name", "")] {
        let output = Command::new(workspace_binary("spam-detector").unwrap())
            .arg(flag)
            .arg(value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn missing_model_file_fails_start() {
    let output = Command::new(workspace_binary("spam-detector").unwrap())
        .env("SPAMFLOW_LISTEN_ADDR", "127.0.0.1:0")
        .env("SPAMFLOW_MODEL_PATH", "/nonexistent/model.json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/model.json"), "{stderr}");
    assert!(stderr.contains("--model-path"), "{stderr}");
}

/// A proto file that declares `ClassifyRequest.text` as bytes, so that grpcurl can send text
/// that is not UTF-8, as a client built from other proto files might.
const BYTES_PROTO: &str = r#"syntax = "proto3";
package spamflow.v1;
message ClassifyRequest {
  bytes raw = 1;
  bytes text = 2;
  bytes message_id = 3;
}
service SpamDetector {
  rpc Classify(ClassifyRequest) returns (ClassifyRequest);
}
"#;

#[test]
fn undecodable_requests_get_invalid_argument() {
    let detector = start_detector(&[]);
    let dir = spamflow_testkit::ScratchDir::new("bytes-proto");
    std::fs::write(dir.join("bytes.proto"), BYTES_PROTO).unwrap();
    let import_path = dir.path().to_str().unwrap().to_owned();
    // `//4=` is the bytes FF FE, which are not UTF-8.
    for request in [
        r#"{"text": "//4="}"#,
        r#"{"raw": "aGk=", "message_id": "//4="}"#,
    ] {
        let (ok, _, stderr) = grpcurl(
            &detector,
            &[
                "-import-path",
                &import_path,
                "-proto",
                "bytes.proto",
                "-d",
                request,
                "spamflow.v1.SpamDetector/Classify",
            ],
        );
        assert!(!ok, "{request} succeeded");
        assert!(stderr.contains("InvalidArgument"), "{request}: {stderr}");
        assert!(stderr.contains("not UTF-8"), "{request}: {stderr}");
    }
}

/// Classifies `text` with grpcurl reading the request from a file, as for requests too long
/// for a command line, and returns (success, stderr).
fn classify_large_text(detector: &Detector, text: &str) -> (bool, String) {
    let dir = spamflow_testkit::ScratchDir::new("large-request");
    let request = dir.join("request.json");
    std::fs::write(&request, format!(r#"{{"text": "{text}"}}"#)).unwrap();
    let output = Command::new(grpcurl_binary().unwrap())
        .args(["-plaintext", "-max-msg-sz", "67108864", "-d", "@"])
        .arg(&detector.address)
        .arg("spamflow.v1.SpamDetector/Classify")
        .stdin(std::fs::File::open(&request).unwrap())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn oversized_request_is_invalid_argument() {
    // The transport limit is twice the message limit, and at least 4 MiB.
    let detector = start_detector(&[("SPAMFLOW_MAX_MESSAGE_BYTES", "1024")]);
    let (ok, stderr) = classify_large_text(&detector, &"a".repeat(5 * 1024 * 1024));
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("InvalidArgument"), "{stderr}");
    assert!(
        stderr.contains("larger than this server accepts"),
        "{stderr}"
    );
}

#[test]
fn server_deadline_gets_deadline_exceeded() {
    // A 1 ms deadline ends the call before a message of 8 MB is parsed and scored.
    let detector = start_detector(&[("SPAMFLOW_GRPC_TIMEOUT_MS", "1")]);
    let (ok, stderr) = classify_large_text(&detector, &"word ".repeat(1_600_000));
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("DeadlineExceeded"), "{stderr}");
    assert!(stderr.contains("SPAMFLOW_GRPC_TIMEOUT_MS"), "{stderr}");
}

//! spamctl with model files and messages that it cannot use.

use spamflow_testkit::ScratchDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn spamctl(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spamctl"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

const MESSAGE: &str = "From: a@example.org\nSubject: lunch\n\nSee you at noon.\n";

#[test]
fn unusable_model_files_exit_64_naming_the_flag() {
    let dir = ScratchDir::new("model-files");
    let message = dir.join("message.eml");
    std::fs::write(&message, MESSAGE).unwrap();
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/default.json"),
    )
    .unwrap();
    let mut unusable: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    unusable["calibration"]["slope"] = 0.0.into();
    let cases = [
        ("truncated.json", shipped[..shipped.len() / 2].to_owned()),
        ("flat.json", unusable.to_string()),
        (
            "nan.json",
            shipped.replacen("\"intercept\":", "\"intercept\":NaN,\"x\":", 1),
        ),
    ];
    let mut models: Vec<PathBuf> = vec![dir.join("missing.json"), dir.path().to_owned()];
    for (name, text) in cases {
        std::fs::write(dir.join(name), text).unwrap();
        models.push(dir.join(name));
    }
    for model in &models {
        let output = spamctl(&["classify", "--model"], &[model, &message]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{}: {stderr}",
            model.display()
        );
        assert!(stderr.contains("--model"), "{stderr}");
        assert!(stderr.contains(&*model.to_string_lossy()), "{stderr}");
    }
}

#[test]
fn classify_reads_no_more_than_the_size_limit() {
    let dir = ScratchDir::new("large-message");
    // A sparse file one byte over 10 MiB: reading it whole would be the mistake.
    let file = dir.join("large.eml");
    let handle = std::fs::File::create(&file).unwrap();
    handle.set_len(10 * 1024 * 1024 + 1).unwrap();
    let output = spamctl(&["classify"], &[&file]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("more than 10485760 bytes"), "{stderr}");
}

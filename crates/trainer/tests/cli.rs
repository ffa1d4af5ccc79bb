//! The trainer binary's handling of bad flags, which needs no servers.

use std::process::Command;

use spamflow_testkit::workspace_binary;

fn trainer(args: &[&str]) -> std::process::Output {
    Command::new(workspace_binary("trainer").unwrap())
        .args(args)
        .env_remove("SPAMFLOW_BASE_CORPUS")
        .env_remove("SPAMFLOW_RETRAIN_INTERVAL")
        .env_remove("SPAMFLOW_RETRAIN_AFTER")
        .output()
        .unwrap()
}

#[test]
fn bad_flags_exit_64_naming_them() {
    let missing = std::env::temp_dir().join(format!("spamflow-no-corpus-{}", std::process::id()));
    let missing = missing.display().to_string();
    for (args, expected) in [
        (vec!["--retrain-interval", "90"], "--retrain-interval"),
        (vec!["--retrain-interval", "0s"], "above zero"),
        (vec!["--retrain-after", "0"], "--retrain-after"),
        (
            vec!["--retrain-after", "0"],
            "below the smallest allowed, 1",
        ),
        (
            vec!["--retrain-after", "-1"],
            "below the smallest allowed, 1",
        ),
        (vec!["--base-corpus", missing.as_str()], "--base-corpus"),
        (vec!["--bloom-url", "notaurl"], "'--bloom-url"),
        (
            vec!["--bloom-url", "http://127.0.0.1:99999"],
            "outside 1 to 65535",
        ),
        (vec!["--model-name", ""], "'--model-name"),
        (vec!["--model-name", " "], "the value is empty"),
        (vec!["--rpc-timeout-ms", "0"], "'--rpc-timeout-ms"),
        (vec!["--max-message-bytes", "0"], "'--max-message-bytes"),
    ] {
        let output = trainer(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn full_stderr_still_exits_64() {
    let missing = std::env::temp_dir().join(format!("spamflow-no-corpus-{}", std::process::id()));
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = Command::new(workspace_binary("trainer").unwrap())
        .arg("--base-corpus")
        .arg(missing)
        .env_remove("SPAMFLOW_BASE_CORPUS")
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(64));
}

#[test]
fn help_lists_learning_loop_flags() {
    let output = trainer(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--model-dir",
        "--base-corpus",
        "--retrain-after",
        "--retrain-interval",
        "SPAMFLOW_BLOOM_URL",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn unusable_base_model_exits_64_naming_it() {
    let dir = spamflow_testkit::ScratchDir::new("trainer-base-model");
    let model = dir.join("truncated.json");
    std::fs::write(&model, "{\"format\":").unwrap();
    let model_dir = dir.join("models");
    let output = trainer(&[
        "--base-model",
        model.to_str().unwrap(),
        "--model-dir",
        model_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--base-model"), "{stderr}");
    assert!(stderr.contains("truncated.json"), "{stderr}");
}

//! The bloom-filter binary's handling of bad flags, which exits before it connects anywhere.

use std::process::{Command, Output};

use spamflow_testkit::workspace_binary;

fn bloom_filter(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(workspace_binary("bloom-filter").unwrap());
    command
        .args(args)
        .env("SPAMFLOW_LISTEN_ADDR", "127.0.0.1:0")
        .env("SPAMFLOW_HTTP_ADDR", "127.0.0.1:0")
        .env_remove("SPAMFLOW_REDIS_URL")
        .env_remove("SPAMFLOW_BLOOM_EXPECTED_ITEMS")
        .env_remove("SPAMFLOW_BLOOM_FALSE_POSITIVE_RATE");
    command.envs(env.iter().copied());
    command.output().unwrap()
}

#[test]
fn bad_filter_sizes_exit_64_naming_flag() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--expected-items", "18446744073709551615"],
            "above the largest allowed, 100000000",
        ),
        (
            &["--expected-items", "1000000000000"],
            "above the largest allowed, 100000000",
        ),
        (&["--expected-items", "0"], "below the smallest allowed, 1"),
        (&["--expected-items", "-1"], "'--expected-items"),
        (
            &["--false-positive-rate", "1e-300"],
            "outside [0.000001, 0.5]",
        ),
        (&["--false-positive-rate", "0.9"], "'--false-positive-rate"),
        (&["--redis-url", "nope"], "--redis-url (SPAMFLOW_REDIS_URL)"),
    ];
    for (args, expected) in cases {
        let output = bloom_filter(args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_environment_value_names_variable() {
    let output = bloom_filter(&[], &[("SPAMFLOW_BLOOM_EXPECTED_ITEMS", "0")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("'--expected-items"), "{stderr}");
    assert!(
        stderr.contains("came from the environment variable SPAMFLOW_BLOOM_EXPECTED_ITEMS"),
        "{stderr}"
    );
}

#[test]
fn redis_url_error_hides_password() {
    let output = bloom_filter(&["--redis-url", "http://:hunter2@127.0.0.1:6379"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn unknown_log_and_sampler_values_exit_64() {
    let cases = [
        (
            "SPAMFLOW_LOG_FORMAT",
            "xml",
            "use text (the default) or json",
        ),
        ("OTEL_TRACES_SAMPLER", "bogus", "use one of always_on"),
    ];
    for (variable, value, expected) in cases {
        let output = bloom_filter(&[], &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(stderr.contains(expected), "{variable}: {stderr}");
    }
}

//! The email-processor binary's handling of bad flags, which exits before it connects anywhere.

use std::process::Command;

use spamflow_testkit::workspace_binary;

#[test]
fn bad_flags_exit_64_naming_them() {
    let cases: [(&[&str], &str); 11] = [
        (&["--detector-url", "notaurl"], "'--detector-url"),
        (&["--detector-url", "ftp://127.0.0.1:1"], "scheme ftp"),
        (
            &["--detector-url", "http://127.0.0.1:99999"],
            "outside 1 to 65535",
        ),
        (&["--bloom-url", "http://:1"], "'--bloom-url"),
        (&["--max-message-bytes", "0"], "'--max-message-bytes"),
        (&["--rpc-timeout-ms", "0"], "'--rpc-timeout-ms"),
        (&["--concurrency", "0"], "below the smallest allowed, 1"),
        (&["--concurrency", "NaN"], "is not a whole number"),
        (&["--kafka-brokers", ""], "the broker list is empty"),
        (&["--topic-prefix", "bad prefix!"], "ASCII letters"),
        (&["--kafka-config", "foo"], "'--kafka-config"),
    ];
    for (args, expected) in cases {
        let output = Command::new(workspace_binary("email-processor").unwrap())
            .args(args)
            .env("SPAMFLOW_HTTP_ADDR", "127.0.0.1:0")
            .env_remove("SPAMFLOW_KAFKA_BROKERS")
            .env_remove("SPAMFLOW_TOPIC_PREFIX")
            .env_remove("SPAMFLOW_KAFKA_CONFIG")
            .env_remove("SPAMFLOW_DETECTOR_URL")
            .env_remove("SPAMFLOW_BLOOM_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

//! The mesh as separate processes on a real Redis server and the standalone Kafka-compatible
//! broker tansu, with the email processor killed and restarted mid-stream.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use spamflow_runtime::store::Store;
use spamflow_testkit::{
    ChildGuard, Kafka, Redis, ScratchDir, eventually, free_port, wait_for_port, workspace_binary,
};

/// Environment shared by every process of one test run.
struct Mesh {
    env: Vec<(String, String)>,
    detector_port: u16,
    bloom_port: u16,
}

impl Mesh {
    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(workspace_binary(binary).unwrap());
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    fn start(&self, binary: &str, extra: &[(&str, String)]) -> ChildGuard {
        let mut command = self.command(binary);
        for (key, value) in extra {
            command.env(key, value);
        }
        ChildGuard::spawn(binary, command).unwrap()
    }

    fn start_grpc(&self, binary: &str, port: u16) -> ChildGuard {
        let mut guard = self.start(
            binary,
            &[("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{port}"))],
        );
        wait_for_port(([127, 0, 0, 1], port).into(), guard.child_mut(), binary).unwrap();
        guard
    }

    /// Starts the processor with a static group membership id, as a replica with a stable
    /// identity runs in production.
    ///
    /// NOTE: tansu 0.6 keeps a dead group leader until the group is rebuilt, so a processor
    /// restarted after SIGKILL without a static id is assigned no partitions there. With the
    /// id it takes the partitions back at once. Apache Kafka handles both cases.
    fn start_processor(&self) -> ChildGuard {
        self.start(
            "email-processor",
            &[
                ("SPAMFLOW_GROUP_INSTANCE_ID", "email-processor-0".to_owned()),
                (
                    "SPAMFLOW_DETECTOR_URL",
                    format!("http://127.0.0.1:{}", self.detector_port),
                ),
                (
                    "SPAMFLOW_BLOOM_URL",
                    format!("http://127.0.0.1:{}", self.bloom_port),
                ),
            ],
        )
    }

    fn replay(&self, spam: &Path, ham: &Path) {
        let output = self
            .command("spamctl")
            .arg("replay")
            .arg("--spam")
            .arg(spam)
            .arg("--ham")
            .arg(ham)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "replay failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Writes `count` distinct messages of each class into `<dir>/spam` and `<dir>/ham`, named
/// `<batch>-<class>-NNNNN.eml`, and returns their record keys.
fn write_messages(dir: &Path, batch: &str, count: usize) -> HashSet<String> {
    let mut keys = HashSet::new();
    for (class, subject, body) in [
        (
            "spam",
            "Limited offer: cheap meds and FREE cash",
            "Click here to claim your free prize money now! Order today, limited time offer, best price guaranteed. Remove me from this list.",
        ),
        (
            "ham",
            "Re: patch review for the parser",
            "Thanks for the patch. I ran the test suite on my machine and the parser change looks right; could you add a regression test for the folded header case before we merge?",
        ),
    ] {
        let folder = dir.join(class);
        std::fs::create_dir_all(&folder).unwrap();
        for index in 0..count {
            let name = format!("{batch}-{class}-{index:05}.eml");
            let message = format!(
                "From: sender{index}@example.net\nTo: someone@example.org\nSubject: {subject} #{index}\n\
                 Message-ID: <{batch}.{index}.{class}@example.net>\n\n{body}\nReference {batch}-{index}.\n"
            );
            std::fs::write(folder.join(&name), message).unwrap();
            keys.insert(format!("replay/{name}"));
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_gets_one_verdict_across_processor_crash() {
    let redis = Redis::start().unwrap();
    let kafka = Kafka::start().unwrap();
    let prefix = format!("e2e{}", std::process::id());
    let detector_port = free_port().unwrap();
    let bloom_port = free_port().unwrap();
    let mesh = Mesh {
        env: vec![
            ("SPAMFLOW_KAFKA_BROKERS".into(), kafka.brokers.clone()),
            ("SPAMFLOW_TOPIC_PREFIX".into(), prefix.clone()),
            ("SPAMFLOW_REDIS_URL".into(), redis.url.clone()),
            ("SPAMFLOW_REDIS_KEY_PREFIX".into(), prefix.clone()),
        ],
        detector_port,
        bloom_port,
    };

    let created = mesh
        .command("spamctl")
        .args(["create-topics", "--partitions", "3"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let _detector = mesh.start_grpc("spam-detector", detector_port);
    let _bloom = mesh.start_grpc("bloom-filter", bloom_port);
    let mut processor = mesh.start_processor();
    let mut handler = mesh.start("action-handler", &[]);

    let corpus = ScratchDir::new("e2e");
    let first = write_messages(&corpus.join("first"), "first", 150);
    let second = write_messages(&corpus.join("second"), "second", 150);
    let expected: HashSet<String> = first.union(&second).cloned().collect();

    let store = Store::redis(&redis.url, &prefix).await.unwrap();
    mesh.replay(&corpus.join("first/spam"), &corpus.join("first/ham"));

    // Kill the processor once part of the first batch is judged, as a crash would.
    let runtime = tokio::runtime::Handle::current();
    let recorded = |minimum: usize| {
        let store = store.clone();
        let runtime = runtime.clone();
        move || -> anyhow::Result<Option<usize>> {
            let count = tokio::task::block_in_place(|| runtime.block_on(store.verdicts()))?.len();
            Ok((count >= minimum).then_some(count))
        }
    };
    eventually(Duration::from_secs(90), "first verdicts", recorded(20)).unwrap();
    processor.kill();

    // The second batch arrives while no processor runs, so the restart must pick it up.
    mesh.replay(&corpus.join("second/spam"), &corpus.join("second/ham"));
    let _processor = mesh.start_processor();
    eventually(
        Duration::from_secs(120),
        "a verdict for every message",
        recorded(expected.len()),
    )
    .unwrap();

    // Redeliveries after the crash must not add or change records.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let verdicts = store.verdicts().await.unwrap();
    let keys: HashSet<String> = verdicts.keys().cloned().collect();
    assert_eq!(
        keys, expected,
        "every replayed message has exactly one recorded verdict"
    );
    // The synthetic spam and ham are far apart, so the shipped model must get them right.
    for (key, label) in &verdicts {
        let expected_label = if key.contains("-spam-") {
            "spam"
        } else {
            "ham"
        };
        assert_eq!(label, expected_label, "{key}");
    }

    let status = handler.terminate(Duration::from_secs(30)).unwrap();
    assert!(
        status.success(),
        "action-handler exited with {status} on SIGTERM"
    );
}

#[test]
fn dev_records_verdicts_in_redis_when_url_given() {
    let redis = Redis::start().unwrap();
    let corpus = ScratchDir::new("dev-redis");
    let expected = write_messages(&corpus, "dev", 20);
    let prefix = format!("devtest{}", std::process::id());
    let output = Command::new(env!("CARGO_BIN_EXE_spamctl"))
        .args([
            "dev",
            "--json",
            "--split",
            "all",
            "--timeout-secs",
            "60",
            "--metrics-addr",
            "127.0.0.1:0",
            "--spam",
        ])
        .arg(corpus.join("spam"))
        .arg("--ham")
        .arg(corpus.join("ham"))
        .env("SPAMFLOW_REDIS_URL", &redis.url)
        .env("SPAMFLOW_REDIS_KEY_PREFIX", &prefix)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["messages"], 40);
    assert_eq!(summary["accuracy"], 1.0, "{summary}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let verdicts = runtime.block_on(async {
        Store::redis(&redis.url, &prefix)
            .await
            .unwrap()
            .verdicts()
            .await
            .unwrap()
    });
    let keys: HashSet<String> = verdicts
        .keys()
        .map(|key| key.replacen("dev/", "replay/", 1))
        .collect();
    assert_eq!(keys, expected);
}

#[test]
fn dev_keeps_serving_metrics_until_terminated() {
    use std::io::{BufRead, BufReader};

    let corpus = ScratchDir::new("dev-metrics");
    write_messages(&corpus, "metrics", 5);
    let port = free_port().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spamctl"));
    command
        .args(["dev", "--keep-running", "--split", "all", "--metrics-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--spam")
        .arg(corpus.join("spam"))
        .arg("--ham")
        .arg(corpus.join("ham"))
        .env_remove("SPAMFLOW_REDIS_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut guard = ChildGuard::adopt("spamctl-dev", child);

    // The summary line comes after every verdict; the mesh must still serve metrics then.
    let mut lines = BufReader::new(stdout).lines();
    let summary = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.starts_with("summary "))
        .expect("spamctl dev printed no summary line");
    assert!(summary.contains("messages=10"), "{summary}");

    let (status, response) = spamflow_testkit::http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200, "{response}");
    for expected in [
        "spamflow_verdicts_total{label=\"spam\"} 5",
        "spamflow_verdicts_total{label=\"ham\"} 5",
    ] {
        assert!(
            response.contains(expected),
            "{expected} missing from:\n{response}"
        );
    }

    let status = guard.terminate(Duration::from_secs(30)).unwrap();
    assert!(
        status.success(),
        "spamctl dev exited with {status} on SIGTERM"
    );
}

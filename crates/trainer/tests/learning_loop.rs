//! The learning loop as separate processes on a real Redis server and the standalone
//! Kafka-compatible broker tansu: corrections published by `spamctl feedback` reach the
//! trainer, the Bloom filter and, through a retrain and its announcement, a running detector.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sha2::{Digest, Sha256};
use spamflow_core::fingerprint::{self, FingerprintKind};
use spamflow_core::{Email, Label, Limits};
use spamflow_proto::v1 as pb;
use spamflow_proto::v1::bloom_filter_client::BloomFilterClient;
use spamflow_proto::v1::spam_detector_client::SpamDetectorClient;
use spamflow_testkit::{
    ChildGuard, Kafka, Redis, ScratchDir, eventually, free_port, http_get, wait_for_port,
    workspace_binary,
};
use tonic::transport::Channel;

/// Time allowed for a correction to travel through Kafka, a retrain and an announcement.
const LOOP_TIMEOUT: Duration = Duration::from_secs(120);

/// The servers and settings shared by the processes of one test.
struct Mesh {
    kafka: Kafka,
    env: Vec<(String, String)>,
    prefix: String,
    dir: ScratchDir,
    _redis: Option<Redis>,
}

impl Mesh {
    /// Starts tansu (and Redis when `with_redis`) and creates the topics with one partition.
    fn new(name: &str, with_redis: bool) -> Self {
        let kafka = Kafka::start().unwrap();
        let prefix = format!(
            "{name}{}x{}",
            std::process::id(),
            spamflow_runtime::now_ms()
        );
        let dir = ScratchDir::new(&format!("trainer-{name}"));
        let mut env = vec![
            ("SPAMFLOW_KAFKA_BROKERS".to_owned(), kafka.brokers.clone()),
            ("SPAMFLOW_TOPIC_PREFIX".to_owned(), prefix.clone()),
            ("SPAMFLOW_REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
        ];
        let redis = with_redis.then(|| Redis::start().unwrap());
        if let Some(redis) = &redis {
            env.push(("SPAMFLOW_REDIS_URL".to_owned(), redis.url.clone()));
        }
        let mesh = Self {
            kafka,
            env,
            prefix,
            dir,
            _redis: redis,
        };
        let output = mesh
            .command("spamctl")
            .args(["create-topics", "--partitions", "1"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "create-topics failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        mesh
    }

    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(workspace_binary(binary).unwrap());
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Starts a service with its HTTP port on `http_port`.
    fn start(&self, binary: &str, http_port: u16, extra: &[(&str, String)]) -> ChildGuard {
        let mut command = self.command(binary);
        command.env("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{http_port}"));
        for (key, value) in extra {
            command.env(key, value);
        }
        ChildGuard::spawn(binary, command).unwrap()
    }

    /// Starts a gRPC service on `port` and waits until it listens.
    fn start_grpc(&self, binary: &str, port: u16, extra: &[(&str, String)]) -> ChildGuard {
        let mut extra = extra.to_vec();
        extra.push(("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{port}")));
        let mut guard = self.start(binary, free_port().unwrap(), &extra);
        wait_for_port(([127, 0, 0, 1], port).into(), guard.child_mut(), binary).unwrap();
        guard
    }

    /// Publishes corrections with `spamctl feedback`.
    fn feedback(&self, label: &str, files: &[&Path], mailbox: &str) {
        let output = self
            .command("spamctl")
            .args(["feedback", "--label", label, "--mailbox", mailbox])
            .args(files)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "spamctl feedback failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.brokers)
            .create()
            .unwrap()
    }

    fn topic(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }
}

/// Returns the SpamAssassin corpus fetched by scripts/fetch-corpus.
fn corpus() -> PathBuf {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/corpus");
    assert!(
        corpus.join(".complete").is_file(),
        "the SpamAssassin corpus is missing from {}; run scripts/fetch-corpus",
        corpus.display()
    );
    corpus
}

/// Returns the sorted message files of a corpus folder.
fn corpus_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(folder))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Copies `count` messages of each class into `<dir>/ham` and `<dir>/spam`.
fn small_corpus(dir: &Path, count: usize) -> PathBuf {
    let base = dir.join("base-corpus");
    for (label, folder) in [("ham", "ham/easy-ham-1"), ("spam", "spam/spam-1")] {
        std::fs::create_dir_all(base.join(label)).unwrap();
        for file in corpus_files(folder).into_iter().take(count) {
            std::fs::copy(&file, base.join(label).join(file.file_name().unwrap())).unwrap();
        }
    }
    base
}

/// Returns the first message of `folder` that the shipped model labels `label` with a
/// probability on the far side of `bound` and that has a body digest fingerprint.
fn pick_message(folder: &str, label: Label, bound: f64) -> PathBuf {
    let model = spam_detector::default_model().unwrap();
    corpus_files(folder)
        .into_iter()
        .find(|path| {
            let raw = std::fs::read(path).unwrap();
            let Ok(email) = Email::parse(&raw, Limits::default()) else {
                return false;
            };
            let score = model.score(&email);
            let far = match label {
                Label::Spam => score.probability > bound,
                Label::Ham => score.probability < bound,
            };
            let has_digest = fingerprint::fingerprints(&email.fingerprint_text())
                .iter()
                .any(|print| print.kind == FingerprintKind::BodyDigest);
            score.label == label && far && has_digest
        })
        .unwrap_or_else(|| panic!("no message in {folder} is clearly {label}"))
}

/// Returns the value of a metric line `series value` from /metrics on `port`, or 0 when the
/// series is absent.
fn metric(port: u16, series: &str) -> f64 {
    try_metric(port, series).unwrap()
}

fn try_metric(port: u16, series: &str) -> anyhow::Result<f64> {
    let (status, body) = http_get(port, "/metrics")?;
    anyhow::ensure!(status == 200, "/metrics returned {status}: {body}");
    let value = body
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse())
        .transpose()?;
    Ok(value.unwrap_or(0.0))
}

/// Waits until the metric reaches `minimum`, also while the server is still starting.
fn wait_for_metric(port: u16, series: &str, minimum: f64) {
    eventually(LOOP_TIMEOUT, series, || {
        Ok(try_metric(port, series)
            .is_ok_and(|value| value >= minimum)
            .then_some(()))
    })
    .unwrap();
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect()
}

fn model_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("model-") && name.ends_with(".json")
        })
        .collect()
}

async fn detector_client(port: u16) -> SpamDetectorClient<Channel> {
    SpamDetectorClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

async fn model_version(detector: &mut SpamDetectorClient<Channel>) -> String {
    detector
        .get_model_info(pb::GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .model_version
}

async fn classify(detector: &mut SpamDetectorClient<Channel>, raw: &[u8]) -> pb::ClassifyResponse {
    detector
        .classify(pb::ClassifyRequest {
            content: Some(pb::classify_request::Content::Raw(raw.to_vec())),
            message_id: "probe".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Polls an async condition from a multi-threaded test until it holds.
async fn wait_until<F, Fut>(description: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < LOOP_TIMEOUT,
            "timed out after {LOOP_TIMEOUT:?} waiting for {description}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correction_retrains_and_detector_swaps_model() {
    let mesh = Mesh::new("loop", true);
    let base_corpus = small_corpus(&mesh.dir, 12);
    let model_dir = mesh.dir.join("models");
    std::fs::create_dir_all(&model_dir).unwrap();
    // Clearly spam to the shipped model, and outside the base corpus.
    let corrected = pick_message("spam/spam-2", Label::Spam, 0.99);
    let raw = std::fs::read(&corrected).unwrap();

    let bloom_port = free_port().unwrap();
    let _bloom = mesh.start_grpc("bloom-filter", bloom_port, &[]);
    let detector_port = free_port().unwrap();
    let detector_http = free_port().unwrap();
    let mut detector_command = mesh.command("spam-detector");
    detector_command
        .env("SPAMFLOW_LISTEN_ADDR", format!("127.0.0.1:{detector_port}"))
        .env("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{detector_http}"));
    let mut detector_process = ChildGuard::spawn("spam-detector", detector_command).unwrap();
    wait_for_port(
        ([127, 0, 0, 1], detector_port).into(),
        detector_process.child_mut(),
        "spam-detector",
    )
    .unwrap();
    let trainer_env = vec![
        ("SPAMFLOW_MODEL_DIR", model_dir.display().to_string()),
        ("SPAMFLOW_BASE_CORPUS", base_corpus.display().to_string()),
        ("SPAMFLOW_RETRAIN_AFTER", "1".to_owned()),
        (
            "SPAMFLOW_BLOOM_URL",
            format!("http://127.0.0.1:{bloom_port}"),
        ),
    ];
    let trainer_http = free_port().unwrap();
    let mut trainer = mesh.start("trainer", trainer_http, &trainer_env);

    let mut detector = detector_client(detector_port).await;
    let shipped = model_version(&mut detector).await;
    let before = classify(&mut detector, &raw).await;
    assert_eq!(before.label, pb::Label::Spam as i32, "{before:?}");
    assert_eq!(before.model_version, shipped);

    mesh.feedback("ham", &[&corrected], "replay");

    let mut probe = detector.clone();
    wait_until("the detector to serve a retrained model", || {
        let mut probe = probe.clone();
        let shipped = shipped.clone();
        async move { model_version(&mut probe).await != shipped }
    })
    .await;
    let retrained = model_version(&mut probe).await;
    let after = classify(&mut detector, &raw).await;
    assert_eq!(after.model_version, retrained);
    assert_eq!(after.label, pb::Label::Ham as i32, "{after:?}");
    assert!(
        after.spam_probability < before.spam_probability,
        "{before:?} {after:?}"
    );

    // The correction is stored once, under its label, and led to exactly one model.
    assert_eq!(eml_files(&model_dir.join("feedback/ham")).len(), 1);
    assert!(eml_files(&model_dir.join("feedback/spam")).is_empty());
    let models = model_files(&model_dir);
    assert_eq!(models.len(), 1, "{models:?}");
    assert!(
        models[0].to_string_lossy().contains(&retrained),
        "{models:?}"
    );
    let model =
        spamflow_core::Model::from_json(&std::fs::read_to_string(&models[0]).unwrap()).unwrap();
    assert_eq!(model.training().refit_of.as_deref(), Some(shipped.as_str()));
    assert_eq!(model.training().messages, 25);
    assert_eq!(
        metric(
            trainer_http,
            "spamflow_feedback_total{label=\"ham\",outcome=\"stored\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            trainer_http,
            "spamflow_model_retrains_total{outcome=\"published\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            detector_http,
            "spamflow_model_announcements_total{outcome=\"applied\"}"
        ),
        1.0
    );

    // A trainer in a new consumer group reads the feedback topic from the start: the same
    // record is delivered again and must change nothing.
    let status = trainer.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "trainer exited with {status} on SIGTERM");
    let mut redelivery_env = trainer_env.clone();
    redelivery_env.push(("SPAMFLOW_GROUP_ID", format!("{}-again", mesh.prefix)));
    let again_http = free_port().unwrap();
    let _again = mesh.start("trainer", again_http, &redelivery_env);
    wait_for_metric(
        again_http,
        "spamflow_feedback_total{label=\"ham\",outcome=\"duplicate\"}",
        1.0,
    );
    assert_eq!(
        metric(
            again_http,
            "spamflow_feedback_total{label=\"ham\",outcome=\"stored\"}"
        ),
        0.0
    );
    assert_eq!(metric(again_http, "spamflow_feedback_pending"), 0.0);
    assert_eq!(eml_files(&model_dir.join("feedback/ham")).len(), 1);
    assert_eq!(model_files(&model_dir).len(), 1);
    assert_eq!(model_version(&mut detector).await, retrained);
}

/// Writes a copy of the shipped model under a new version and returns (path, sha256).
fn write_model_version(dir: &Path, version: &str) -> (PathBuf, String) {
    let shipped = spam_detector::default_model().unwrap();
    let json = spam_detector::DEFAULT_MODEL_JSON.replacen(
        &format!("\"model_version\":\"{}\"", shipped.version()),
        &format!("\"model_version\":\"{version}\""),
        1,
    );
    let path = dir.join(format!("model-{version}.json"));
    std::fs::write(&path, &json).unwrap();
    (path, hex::encode(Sha256::digest(json.as_bytes())))
}

async fn announce(
    mesh: &Mesh,
    producer: &FutureProducer,
    path: &Path,
    version: &str,
    sha256: &str,
) {
    let payload = pb::ModelAnnouncement {
        model_version: version.to_owned(),
        location: path.display().to_string(),
        sha256: sha256.to_owned(),
        created_at_ms: spamflow_runtime::now_ms(),
    }
    .encode_to_vec();
    producer
        .send(
            FutureRecord::to(&mesh.topic("models"))
                .key("default")
                .payload(&payload),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_model_file_is_rejected() {
    let mesh = Mesh::new("reject", false);
    let detector_port = free_port().unwrap();
    let detector_http = free_port().unwrap();
    let _detector = mesh.start_grpc(
        "spam-detector",
        detector_port,
        &[("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{detector_http}"))],
    );
    let mut detector = detector_client(detector_port).await;
    let shipped = model_version(&mut detector).await;
    let producer = mesh.producer();

    // A file changed after its announcement was computed: the sha256 no longer matches.
    let (corrupted, sha256) = write_model_version(&mesh.dir, "lr2-corrupted");
    let mut bytes = std::fs::read(&corrupted).unwrap();
    bytes.extend_from_slice(b" ");
    std::fs::write(&corrupted, bytes).unwrap();
    announce(&mesh, &producer, &corrupted, "lr2-corrupted", &sha256).await;

    let rejected = "spamflow_model_announcements_total{outcome=\"rejected\"}";
    wait_for_metric(detector_http, rejected, 1.0);
    assert_eq!(model_version(&mut detector).await, shipped);
    let probe = classify(&mut detector, b"Subject: hi\n\nlunch at noon?\n").await;
    assert_eq!(probe.model_version, shipped);

    // A sound announcement after it is applied, so the rejection was not a broken follower.
    // Requests keep flowing during the swap, and every one gets a response from one model.
    let mut client = detector.clone();
    let traffic = tokio::spawn(async move {
        let mut versions = Vec::new();
        loop {
            let response = client
                .classify(pb::ClassifyRequest {
                    content: Some(pb::classify_request::Content::Text("lunch at noon?".into())),
                    message_id: "during-swap".into(),
                })
                .await
                .expect("a request during the swap failed")
                .into_inner();
            versions.push(response.model_version.clone());
            if response.model_version == "lr2-sound" {
                return versions;
            }
        }
    });
    let (sound, sha256) = write_model_version(&mesh.dir, "lr2-sound");
    announce(&mesh, &producer, &sound, "lr2-sound", &sha256).await;
    let versions = tokio::time::timeout(LOOP_TIMEOUT, traffic)
        .await
        .expect("the detector did not serve lr2-sound in time")
        .unwrap();
    assert!(
        versions
            .iter()
            .all(|version| version == &shipped || version == "lr2-sound"),
        "{versions:?}"
    );
    assert_eq!(model_version(&mut detector).await, "lr2-sound");
    assert_eq!(metric(detector_http, rejected), 1.0);
    assert_eq!(
        metric(
            detector_http,
            "spamflow_model_info{model_version=\"lr2-sound\"}"
        ),
        1.0
    );

    // A detector started now reads both announcements as history: it skips the superseded
    // corrupted one and serves the newest.
    let restarted_port = free_port().unwrap();
    let restarted_http = free_port().unwrap();
    let _restarted = mesh.start_grpc(
        "spam-detector",
        restarted_port,
        &[("SPAMFLOW_HTTP_ADDR", format!("127.0.0.1:{restarted_http}"))],
    );
    let mut restarted = detector_client(restarted_port).await;
    wait_until("the restarted detector to serve lr2-sound", || {
        let mut restarted = restarted.clone();
        async move { model_version(&mut restarted).await == "lr2-sound" }
    })
    .await;
    assert_eq!(model_version(&mut restarted).await, "lr2-sound");
    assert_eq!(
        metric(
            restarted_http,
            "spamflow_model_announcements_total{outcome=\"superseded\"}"
        ),
        1.0
    );
    assert_eq!(metric(restarted_http, rejected), 0.0);
}

/// Reads the verdicts topic until the verdict of `message_id` arrives.
async fn verdict_of(consumer: &StreamConsumer, message_id: &str) -> pb::VerdictEvent {
    let wait = async {
        loop {
            let message = consumer.recv().await.unwrap();
            let verdict = pb::VerdictEvent::decode(message.payload().unwrap()).unwrap();
            if verdict.message_id == message_id {
                return verdict;
            }
        }
    };
    tokio::time::timeout(LOOP_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| panic!("no verdict for {message_id} within {LOOP_TIMEOUT:?}"))
}

async fn publish_email(mesh: &Mesh, producer: &FutureProducer, message_id: &str, raw: &[u8]) {
    let payload = pb::EmailEvent {
        mailbox: "ops".into(),
        message_id: message_id.to_owned(),
        raw: raw.to_vec(),
        source: "test".into(),
        ..pb::EmailEvent::default()
    }
    .encode_to_vec();
    producer
        .send(
            FutureRecord::to(&mesh.topic("emails.raw"))
                .key(&format!("ops/{message_id}"))
                .payload(&payload),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_fills_bloom_and_ham_override_wins() {
    let mesh = Mesh::new("bloom", true);
    // Clearly ham to the shipped model, so only the Bloom filter can make it spam.
    let message = pick_message("ham/easy-ham-1", Label::Ham, 0.2);
    let raw = std::fs::read(&message).unwrap();
    let fingerprints: Vec<pb::Fingerprint> = spamflow_runtime::convert::body_fingerprints(
        &Email::parse(&raw, Limits::default())
            .unwrap()
            .fingerprint_text(),
    );
    let model_dir = mesh.dir.join("models");
    std::fs::create_dir_all(&model_dir).unwrap();

    let bloom_port = free_port().unwrap();
    let detector_port = free_port().unwrap();
    let _bloom = mesh.start_grpc("bloom-filter", bloom_port, &[]);
    let _detector = mesh.start_grpc(
        "spam-detector",
        detector_port,
        &[("SPAMFLOW_MODEL_UPDATES", "off".to_owned())],
    );
    let _processor = mesh.start(
        "email-processor",
        free_port().unwrap(),
        &[
            (
                "SPAMFLOW_DETECTOR_URL",
                format!("http://127.0.0.1:{detector_port}"),
            ),
            (
                "SPAMFLOW_BLOOM_URL",
                format!("http://127.0.0.1:{bloom_port}"),
            ),
        ],
    );
    let trainer_http = free_port().unwrap();
    let _trainer = mesh.start(
        "trainer",
        trainer_http,
        &[
            ("SPAMFLOW_MODEL_DIR", model_dir.display().to_string()),
            ("SPAMFLOW_RETRAIN_AFTER", "1000".to_owned()),
            (
                "SPAMFLOW_BLOOM_URL",
                format!("http://127.0.0.1:{bloom_port}"),
            ),
        ],
    );
    let bloom = BloomFilterClient::connect(format!("http://127.0.0.1:{bloom_port}"))
        .await
        .unwrap();
    let check = |bloom: &BloomFilterClient<Channel>| {
        let mut bloom = bloom.clone();
        let fingerprints = fingerprints.clone();
        async move {
            bloom
                .check(pb::CheckRequest { fingerprints })
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert!(check(&bloom).await.matches.is_empty());

    let verdicts: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &mesh.kafka.brokers)
        .set("group.id", format!("{}-verdicts", mesh.prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    verdicts
        .subscribe(&[&mesh.topic("emails.verdicts")])
        .unwrap();
    let producer = mesh.producer();

    // Confirmed spam: every fingerprint of the message enters the filter.
    mesh.feedback("spam", &[&message], "ops");
    wait_until("the fingerprints in the Bloom filter", || {
        let response = check(&bloom);
        let expected = fingerprints.len();
        async move { response.await.matches.len() == expected }
    })
    .await;
    publish_email(&mesh, &producer, "first", &raw).await;
    let first = verdict_of(&verdicts, "first").await;
    assert_eq!(first.label, pb::Label::Spam as i32, "{first:?}");
    assert_eq!(first.reason, "bloom_body_digest");

    // The user moves it back to the inbox: the ham override wins over the filter.
    mesh.feedback("ham", &[&message], "ops");
    wait_until("the ham override", || {
        let response = check(&bloom);
        async move { response.await.matches.is_empty() }
    })
    .await;
    let response = check(&bloom).await;
    assert_eq!(response.overridden.len(), fingerprints.len());
    publish_email(&mesh, &producer, "second", &raw).await;
    let second = verdict_of(&verdicts, "second").await;
    assert_eq!(second.label, pb::Label::Ham as i32, "{second:?}");
    assert_eq!(second.reason, "model");
    assert!(second.bloom_matches.is_empty(), "{second:?}");

    // The latest label wins in the stored corrections too.
    assert_eq!(eml_files(&model_dir.join("feedback/ham")).len(), 1);
    assert!(eml_files(&model_dir.join("feedback/spam")).is_empty());
    assert_eq!(
        metric(
            trainer_http,
            "spamflow_feedback_total{label=\"spam\",outcome=\"stored\"}"
        ),
        1.0
    );
    assert_eq!(metric(trainer_http, "spamflow_feedback_pending"), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_feedback_goes_to_dead_letters() {
    let mesh = Mesh::new("poison", false);
    let model_dir = mesh.dir.join("models");
    std::fs::create_dir_all(&model_dir).unwrap();
    let trainer_http = free_port().unwrap();
    let _trainer = mesh.start(
        "trainer",
        trainer_http,
        &[("SPAMFLOW_MODEL_DIR", model_dir.display().to_string())],
    );

    let producer = mesh.producer();
    let unlabelled = pb::FeedbackEvent {
        mailbox: "ops".into(),
        message_id: "unlabelled".into(),
        label: pb::Label::Unspecified as i32,
        raw: b"Subject: hi\n\nlunch at noon?\n".to_vec(),
        ..pb::FeedbackEvent::default()
    }
    .encode_to_vec();
    for (key, payload) in [
        ("ops/garbage", b"\xff\xff not protobuf".to_vec()),
        ("ops/unlabelled", unlabelled),
    ] {
        producer
            .send(
                FutureRecord::to(&mesh.topic("emails.feedback"))
                    .key(key)
                    .payload(&payload),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .unwrap();
    }

    let dead_letters: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &mesh.kafka.brokers)
        .set("group.id", format!("{}-dlq", mesh.prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dead_letters
        .subscribe(&[&mesh.topic("emails.dlq")])
        .unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let message = tokio::time::timeout(LOOP_TIMEOUT, dead_letters.recv())
            .await
            .expect("no dead letter in time")
            .unwrap();
        let reason = message
            .headers()
            .and_then(|headers| {
                use rdkafka::message::Headers as _;
                headers
                    .iter()
                    .find(|header| header.key == "spamflow-dlq-reason")
                    .and_then(|header| header.value)
                    .map(|value| String::from_utf8_lossy(value).into_owned())
            })
            .unwrap_or_default();
        let key = message
            .key()
            .map(|key| String::from_utf8_lossy(key).into_owned());
        reasons.push((key.unwrap_or_default(), reason));
    }
    assert_eq!(reasons[0].0, "ops/garbage");
    assert!(
        reasons[0].1.contains("not a spamflow.v1.FeedbackEvent"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, "ops/unlabelled");
    assert!(reasons[1].1.contains("label 0"), "{reasons:?}");
    assert!(eml_files(&model_dir.join("feedback/ham")).is_empty());
    assert!(eml_files(&model_dir.join("feedback/spam")).is_empty());

    // Connected to the broker and a member of its group, the trainer reports healthy.
    eventually(LOOP_TIMEOUT, "a healthy trainer", || {
        Ok(http_get(trainer_http, "/healthz")
            .ok()
            .filter(|(status, _)| *status == 200))
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_retrains_after_one_correction() {
    let mesh = Mesh::new("interval", false);
    let base_corpus = small_corpus(&mesh.dir, 5);
    let model_dir = mesh.dir.join("models");
    std::fs::create_dir_all(&model_dir).unwrap();
    // A body this short has no fingerprints, so the correction needs no Bloom filter.
    let short = mesh.dir.join("short.eml");
    std::fs::write(
        &short,
        "From: a@example.net\nSubject: hi\n\nlunch at noon?\n",
    )
    .unwrap();
    let trainer_http = free_port().unwrap();
    let _trainer = mesh.start(
        "trainer",
        trainer_http,
        &[
            ("SPAMFLOW_MODEL_DIR", model_dir.display().to_string()),
            ("SPAMFLOW_BASE_CORPUS", base_corpus.display().to_string()),
            ("SPAMFLOW_RETRAIN_AFTER", "1000".to_owned()),
            ("SPAMFLOW_RETRAIN_INTERVAL", "1s".to_owned()),
        ],
    );

    mesh.feedback("ham", &[&short], "ops");
    wait_for_metric(
        trainer_http,
        "spamflow_model_retrains_total{outcome=\"published\"}",
        1.0,
    );
    assert_eq!(metric(trainer_http, "spamflow_feedback_pending"), 0.0);

    // The announcement names the file the trainer wrote, with its sha256.
    let models: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &mesh.kafka.brokers)
        .set("group.id", format!("{}-models", mesh.prefix))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    models.subscribe(&[&mesh.topic("models")]).unwrap();
    let record = tokio::time::timeout(LOOP_TIMEOUT, models.recv())
        .await
        .expect("no announcement in time")
        .unwrap();
    assert_eq!(record.key(), Some(b"default".as_slice()));
    let announcement = pb::ModelAnnouncement::decode(record.payload().unwrap()).unwrap();
    let path = PathBuf::from(&announcement.location);
    assert_eq!(path.parent(), Some(model_dir.as_path()));
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("model-{}.json", announcement.model_version)
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(announcement.sha256, hex::encode(Sha256::digest(&bytes)));
    assert!(announcement.created_at_ms > 0);
    let model = spamflow_core::Model::from_json(&String::from_utf8(bytes).unwrap()).unwrap();
    assert_eq!(model.version(), announcement.model_version);
    assert_eq!(model.training().messages, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_a_running_retrain() {
    let mesh = Mesh::new("shutdown", false);
    let model_dir = mesh.dir.join("models");
    std::fs::create_dir_all(&model_dir).unwrap();
    let short = mesh.dir.join("short.eml");
    std::fs::write(
        &short,
        "From: a@example.net\nSubject: hi\n\nlunch at noon?\n",
    )
    .unwrap();
    // The whole corpus keeps a retrain busy for minutes, far longer than this test waits.
    let trainer_http = free_port().unwrap();
    let mut trainer = mesh.start(
        "trainer",
        trainer_http,
        &[
            ("SPAMFLOW_MODEL_DIR", model_dir.display().to_string()),
            ("SPAMFLOW_BASE_CORPUS", corpus().display().to_string()),
            ("SPAMFLOW_RETRAIN_AFTER", "1".to_owned()),
        ],
    );

    mesh.feedback("ham", &[&short], "ops");
    wait_for_metric(
        trainer_http,
        "spamflow_feedback_total{label=\"ham\",outcome=\"stored\"}",
        1.0,
    );
    // The stored correction starts the retrain at once; give it a moment to be under way.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Waiting for the retrain would take minutes, so an exit within the timeout means the
    // trainer abandoned it.
    let status = trainer.terminate(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "trainer exited with {status}");
    assert!(
        model_files(&model_dir).is_empty(),
        "an abandoned retrain wrote a model: {:?}",
        model_files(&model_dir)
    );
    assert_eq!(eml_files(&model_dir.join("feedback/ham")).len(), 1);
}

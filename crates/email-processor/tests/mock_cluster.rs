//! The processor against librdkafka's mock cluster, with the detector and the Bloom filter
//! served over gRPC on loopback in this process.

use std::collections::HashMap;
use std::time::Duration;

use email_processor::{Config, Processor};
use futures::StreamExt;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use spamflow_core::Limits;
use spamflow_proto::v1 as pb;
use spamflow_runtime::grpc::ServerArgs;
use spamflow_runtime::kafka::{HEADER_DLQ_ORIGIN, HEADER_DLQ_REASON, KafkaArgs};
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::Store;

const HAM: &str = "From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: Minutes of the design review\n\n\
Thanks everyone for joining the design review today. We agreed to keep the parser in its own \
crate, to add fuzzing before the next release, and to revisit the retry policy next week.\n";

/// A record as read back from an output topic.
struct Output {
    topic: String,
    payload: Vec<u8>,
    headers: HashMap<String, String>,
}

async fn publish(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Timeout::After(Duration::from_secs(10)),
        )
        .await
        .unwrap();
}

fn event(message_id: &str, raw: &str) -> Vec<u8> {
    pb::EmailEvent {
        mailbox: "box".into(),
        message_id: message_id.into(),
        raw: raw.as_bytes().to_vec(),
        published_at_ms: spamflow_runtime::now_ms(),
        ..pb::EmailEvent::default()
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_and_dead_letters() {
    let cluster = MockCluster::new(1).unwrap();
    let kafka = KafkaArgs::for_brokers(&cluster.bootstrap_servers(), "mock");
    let topics = kafka.topics();
    for (topic, _) in topics.all() {
        cluster.create_topic(topic, 2, 1).unwrap();
    }
    let (stop, stopping) = Stopping::new();
    let server = ServerArgs {
        grpc_timeout_ms: 5_000,
    };

    let detector_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let detector_addr = detector_listener.local_addr().unwrap();
    let detector = spam_detector::Detector::new(
        spam_detector::default_model().unwrap(),
        Limits::default(),
        10,
    );
    let mut detector_stop = stopping.clone();
    let server_for_detector = server.clone();
    tokio::spawn(async move {
        spam_detector::run(
            detector,
            &server_for_detector,
            detector_listener,
            async move { detector_stop.wait().await },
        )
        .await
    });

    let store = Store::memory();
    let filter = bloom_filter::Filter::open(store, 1000, 0.001)
        .await
        .unwrap();
    // The ham message's body becomes known spam, so its verdict must come from the filter.
    let known: Vec<String> = spamflow_core::fingerprint::fingerprints(
        &spamflow_core::Email::parse(HAM.as_bytes(), Limits::default())
            .unwrap()
            .fingerprint_text(),
    )
    .iter()
    .map(|f| f.bloom_key())
    .collect();
    filter.insert(&known).await.unwrap();
    let bloom_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bloom_addr = bloom_listener.local_addr().unwrap();
    let mut bloom_stop = stopping.clone();
    tokio::spawn(async move {
        bloom_filter::run(filter, &server, bloom_listener, async move {
            bloom_stop.wait().await
        })
        .await
    });

    let config = Config {
        kafka: kafka.clone(),
        group_id: "processor-test".into(),
        detector_url: format!("http://{detector_addr}"),
        bloom_url: format!("http://{bloom_addr}"),
        rpc_timeout_ms: 5_000,
        concurrency: 4,
        max_message_bytes: 4096,
        http_addr: email_processor::DEFAULT_HTTP_ADDR.parse().unwrap(),
    };
    let processor = Processor::new(&config).unwrap();
    let processor_task = {
        let stopping = stopping.clone();
        tokio::spawn(async move { email_processor::run(&config, processor, stopping).await })
    };

    let producer: FutureProducer = kafka.producer_config().unwrap().create().unwrap();
    publish(&producer, &topics.raw, "box/ham", &event("ham", HAM)).await;
    publish(
        &producer,
        &topics.raw,
        "box/garbage",
        b"\xff\x00 not protobuf",
    )
    .await;
    publish(
        &producer,
        &topics.raw,
        "box/not-email",
        &event("not-email", "just some words\n"),
    )
    .await;
    let oversized = format!("Subject: big\n\n{}", "x".repeat(5000));
    publish(&producer, &topics.raw, "box/big", &event("big", &oversized)).await;

    let reader: StreamConsumer = kafka
        .consumer_config("processor-test-reader")
        .unwrap()
        .create()
        .unwrap();
    reader
        .subscribe(&[topics.verdicts.as_str(), topics.dlq.as_str()])
        .unwrap();
    let mut outputs: HashMap<String, Output> = HashMap::new();
    let mut stream = reader.stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while outputs.len() < 4 {
        let record = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("timed out waiting for 4 output records")
            .unwrap()
            .unwrap();
        let mut headers = HashMap::new();
        if let Some(list) = record.headers() {
            for header in list.iter() {
                headers.insert(
                    header.key.to_owned(),
                    String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        let key = String::from_utf8_lossy(record.key().unwrap()).into_owned();
        outputs.insert(
            key,
            Output {
                topic: record.topic().to_owned(),
                payload: record.payload().unwrap_or_default().to_vec(),
                headers,
            },
        );
    }
    drop(stream);

    let ham = &outputs["box/ham"];
    assert_eq!(ham.topic, topics.verdicts);
    let verdict = pb::VerdictEvent::decode(ham.payload.as_slice()).unwrap();
    assert_eq!(verdict.label, pb::Label::Spam as i32, "{verdict:?}");
    assert_eq!(verdict.reason, "bloom_body_digest");
    assert!(
        verdict.spam_probability < 0.5,
        "the model alone would call it ham"
    );
    assert!(!verdict.bloom_matches.is_empty());

    let expectations = [
        ("box/garbage", "not a spamflow.v1.EmailEvent"),
        ("box/not-email", "not an RFC 5322 message"),
        ("box/big", "above the limit of 4096 bytes"),
    ];
    for (key, reason) in expectations {
        let output = &outputs[key];
        assert_eq!(output.topic, topics.dlq, "{key}");
        let header = &output.headers[HEADER_DLQ_REASON];
        assert!(header.contains(reason), "{key}: {header}");
        assert!(
            output.headers[HEADER_DLQ_ORIGIN].starts_with(&topics.raw),
            "{key}"
        );
    }
    assert_eq!(
        outputs["box/garbage"].payload, b"\xff\x00 not protobuf",
        "the DLQ keeps the original value"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(30), processor_task)
        .await
        .expect("processor did not stop")
        .unwrap()
        .unwrap();
}

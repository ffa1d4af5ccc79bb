//! Traces, metrics and health of the mesh as separate processes on a real Redis server and the
//! tansu broker. A trace receiver inside the test implements the OTLP trace service, so the
//! services export to it exactly as they would to Jaeger.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use spamflow_testkit::{
    ChildGuard, Kafka, Redis, ScratchDir, eventually, free_port, http_get, wait_for_port,
    workspace_binary,
};

/// One exported span with the service that sent it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    start_ns: u64,
    end_ns: u64,
    attributes: HashMap<String, String>,
}

/// An OTLP trace receiver that keeps every span it is sent.
#[derive(Debug, Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

fn value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(text)) => text.clone(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute_map(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|pair| (pair.key.clone(), value_text(pair.value.as_ref())))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans
                .resource
                .map(|resource| attribute_map(&resource.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(ReceivedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                        start_ns: span.start_time_unix_nano,
                        end_ns: span.end_time_unix_nano,
                        attributes: attribute_map(&span.attributes),
                    });
                }
            }
        }
        self.spans.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves the receiver on a free loopback port in the current runtime and returns its
    /// endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        format!("http://{address}")
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }
}

/// The services of one test run, each with its own ports, sharing Kafka, Redis and a topic
/// and key prefix.
struct Mesh {
    env: Vec<(String, String)>,
    detector_port: u16,
    bloom_port: u16,
    http_ports: HashMap<&'static str, u16>,
    _guards: Vec<ChildGuard>,
    _redis: Redis,
    _kafka: Kafka,
    prefix: String,
}

const SERVICES: [&str; 4] = [
    "spam-detector",
    "bloom-filter",
    "email-processor",
    "action-handler",
];

impl Mesh {
    /// Starts Redis, tansu and every service, with `extra_env` added to each process.
    fn start(name: &str, extra_env: &[(&str, String)]) -> Self {
        let redis = Redis::start().unwrap();
        let kafka = Kafka::start().unwrap();
        let prefix = format!("{name}{}", std::process::id());
        let mut env = vec![
            ("SPAMFLOW_KAFKA_BROKERS".to_owned(), kafka.brokers.clone()),
            ("SPAMFLOW_TOPIC_PREFIX".to_owned(), prefix.clone()),
            ("SPAMFLOW_REDIS_URL".to_owned(), redis.url.clone()),
            ("SPAMFLOW_REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone())),
        );
        let mut mesh = Self {
            env,
            detector_port: free_port().unwrap(),
            bloom_port: free_port().unwrap(),
            http_ports: SERVICES
                .iter()
                .map(|service| (*service, free_port().unwrap()))
                .collect(),
            _guards: Vec::new(),
            _redis: redis,
            _kafka: kafka,
            prefix,
        };

        let created = mesh
            .command("spamctl")
            .args(["create-topics", "--partitions", "1"])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );

        for service in SERVICES {
            let mut command = mesh.command(service);
            command.env(
                "SPAMFLOW_HTTP_ADDR",
                format!("127.0.0.1:{}", mesh.http_ports[service]),
            );
            match service {
                "spam-detector" => {
                    command.env(
                        "SPAMFLOW_LISTEN_ADDR",
                        format!("127.0.0.1:{}", mesh.detector_port),
                    );
                }
                "bloom-filter" => {
                    command.env(
                        "SPAMFLOW_LISTEN_ADDR",
                        format!("127.0.0.1:{}", mesh.bloom_port),
                    );
                }
                "email-processor" => {
                    command
                        .env(
                            "SPAMFLOW_DETECTOR_URL",
                            format!("http://127.0.0.1:{}", mesh.detector_port),
                        )
                        .env(
                            "SPAMFLOW_BLOOM_URL",
                            format!("http://127.0.0.1:{}", mesh.bloom_port),
                        );
                }
                _ => {}
            }
            let mut guard = ChildGuard::spawn(service, command).unwrap();
            wait_for_port(
                ([127, 0, 0, 1], mesh.http_ports[service]).into(),
                guard.child_mut(),
                service,
            )
            .unwrap();
            mesh._guards.push(guard);
        }

        // Every service reports ready: model loaded, Redis reachable, consumers connected
        // and in their groups.
        for service in SERVICES {
            let port = mesh.http_ports[service];
            eventually(
                Duration::from_secs(60),
                &format!("{service} /healthz to return 200"),
                || Ok((http_get(port, "/healthz")?.0 == 200).then_some(())),
            )
            .unwrap();
        }
        mesh
    }

    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(workspace_binary(binary).unwrap());
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Publishes the messages in `spam` and `ham` with `spamctl replay`.
    fn replay(&self, spam: &Path, ham: &Path) {
        let mut command = self.command("spamctl");
        command
            .arg("replay")
            .arg("--spam")
            .arg(spam)
            .arg("--ham")
            .arg(ham);
        // The replay runs to completion, so it goes through ChildGuard only for the
        // environment rules; its exit status is checked here.
        let mut guard = ChildGuard::spawn("spamctl-replay", command).unwrap();
        let status = guard.child_mut().wait().unwrap();
        assert!(status.success(), "spamctl replay exited with {status}");
    }

    fn metrics(&self, service: &str) -> String {
        let (status, body) = http_get(self.http_ports[service], "/metrics").unwrap();
        assert_eq!(status, 200, "{service} /metrics: {body}");
        body
    }
}

/// Reads the value of the sample `series` (name and labels as printed) from Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Writes `count` messages of each class into `<dir>/spam` and `<dir>/ham`.
fn write_messages(dir: &Path, count: usize) {
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
            let message = format!(
                "From: sender{index}@example.net\nTo: someone@example.org\nSubject: {subject} #{index}\n\
                 Message-ID: <{index}.{class}@example.net>\n\n{body}\nReference {index}.\n"
            );
            std::fs::write(folder.join(format!("{class}-{index:03}.eml")), message).unwrap();
        }
    }
}

/// The spans of one email's trace, in hop order: (span name, service, parent span name).
const HOPS: [(&str, &str, Option<&str>); 10] = [
    ("publish_email", "spamctl", None),
    ("process_email", "email-processor", Some("publish_email")),
    (
        "spamflow.v1.SpamDetector/Classify",
        "spam-detector",
        Some("process_email"),
    ),
    (
        "classify_message",
        "spam-detector",
        Some("spamflow.v1.SpamDetector/Classify"),
    ),
    (
        "spamflow.v1.BloomFilter/Check",
        "bloom-filter",
        Some("process_email"),
    ),
    (
        "check_fingerprints",
        "bloom-filter",
        Some("spamflow.v1.BloomFilter/Check"),
    ),
    ("produce_verdict", "email-processor", Some("process_email")),
    ("handle_verdict", "action-handler", Some("produce_verdict")),
    ("record_verdict", "action-handler", Some("handle_verdict")),
    // Gmail actions are off in this mesh, so the span records the outcome `logged`.
    ("apply_action", "action-handler", Some("handle_verdict")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_every_hop() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let mesh = tokio::task::block_in_place(|| {
        Mesh::start(
            "trace",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
                ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
                ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ],
        )
    });
    let corpus = ScratchDir::new("trace");
    write_messages(&corpus, 1);
    std::fs::remove_dir_all(corpus.join("ham")).unwrap();
    std::fs::create_dir_all(corpus.join("ham")).unwrap();
    tokio::task::block_in_place(|| mesh.replay(&corpus.join("spam"), &corpus.join("ham")));

    let spans = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(60), "a span of every hop", || {
            let spans = receiver.spans();
            let complete = HOPS
                .iter()
                .all(|(name, _, _)| spans.iter().any(|span| span.name == *name));
            Ok(complete.then_some(spans))
        })
    })
    .unwrap_or_else(|error| {
        let received: Vec<(String, String)> = receiver
            .spans()
            .into_iter()
            .map(|span| (span.service, span.name))
            .collect();
        panic!("{error}; received {received:?}")
    });

    let by_name = |name: &str| -> &ReceivedSpan {
        let matching: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.name == name).collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one {name} span, got {matching:#?}"
        );
        matching[0]
    };
    let root = by_name("publish_email");
    assert_eq!(root.trace_id.len(), 16, "{root:?}");
    assert!(
        root.parent_span_id.is_empty(),
        "publish_email is the root: {root:?}"
    );
    for (name, service, parent) in HOPS {
        let span = by_name(name);
        assert_eq!(span.service, service, "service of {name}");
        assert_eq!(
            span.trace_id, root.trace_id,
            "{name} is in the email's trace"
        );
        if let Some(parent) = parent {
            assert_eq!(
                span.parent_span_id,
                by_name(parent).span_id,
                "{name} is a child of {parent}"
            );
        }
    }

    let message_id = "spam-000.eml";
    for name in [
        "publish_email",
        "process_email",
        "produce_verdict",
        "handle_verdict",
    ] {
        let attributes = &by_name(name).attributes;
        assert_eq!(attributes["message_id"], message_id, "{name}");
        assert!(
            attributes["topic"].starts_with(&mesh.prefix),
            "{name}: {attributes:?}"
        );
    }
    let consumed = &by_name("process_email").attributes;
    assert_eq!(consumed["partition"], "0");
    assert_eq!(consumed["offset"], "0");
    let classify = &by_name("spamflow.v1.SpamDetector/Classify").attributes;
    assert_eq!(classify["rpc.method"], "Classify");
    assert_eq!(classify["grpc.status"], "Ok");
    assert!(!by_name("classify_message").attributes["model_version"].is_empty());
    let action = &by_name("apply_action").attributes;
    assert_eq!(action["message_id"], message_id);
    assert_eq!(action["action"], "move_to_spam");
    assert_eq!(action["outcome"], "logged");

    // No span carries addresses, subjects or body text.
    for span in &spans {
        for value in span.attributes.values() {
            for personal in ["@example", "Limited offer", "Click here"] {
                assert!(!value.contains(personal), "{} carries {value:?}", span.name);
            }
        }
    }

    if let Ok(path) = std::env::var("SPAMFLOW_TRACE_SVG") {
        let trace: Vec<ReceivedSpan> = spans
            .iter()
            .filter(|span| span.trace_id == root.trace_id)
            .cloned()
            .collect();
        std::fs::write(&path, waterfall_svg(&trace)).unwrap();
        eprintln!("wrote the trace waterfall to {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_run() {
    // The exporters point at a port where no collector listens, so this run also shows that a
    // failed exporter does not hold up mail.
    let dead_collector = format!("http://127.0.0.1:{}", free_port().unwrap());
    let mesh = tokio::task::block_in_place(|| {
        Mesh::start(
            "metrics",
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", dead_collector.clone())],
        )
    });
    let corpus = ScratchDir::new("metrics");
    write_messages(&corpus, 3);
    tokio::task::block_in_place(|| mesh.replay(&corpus.join("spam"), &corpus.join("ham")));

    let applied = "spamflow_actions_total{action=\"record\",outcome=\"applied\"}";
    tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(90), "six applied verdicts", || {
            Ok((sample(&mesh.metrics("action-handler"), applied) == Some(6.0)).then_some(()))
        })
    })
    .unwrap();

    let raw = format!("{}.emails.raw", mesh.prefix);
    let verdicts = format!("{}.emails.verdicts", mesh.prefix);
    let processor = mesh.metrics("email-processor");
    let counted = |text: &str, series: &str| sample(text, series).unwrap_or(-1.0);
    assert_eq!(
        counted(
            &processor,
            &format!("spamflow_messages_consumed_total{{topic=\"{raw}\"}}")
        ),
        6.0,
        "{processor}"
    );
    assert_eq!(
        counted(
            &processor,
            &format!("spamflow_messages_produced_total{{topic=\"{verdicts}\"}}")
        ),
        6.0,
        "{processor}"
    );
    assert_eq!(
        counted(&processor, "spamflow_verdicts_total{label=\"spam\"}"),
        3.0
    );
    assert_eq!(
        counted(&processor, "spamflow_verdicts_total{label=\"ham\"}"),
        3.0
    );
    assert!(
        !processor.contains("spamflow_dead_letters_total{"),
        "{processor}"
    );
    // librdkafka reports lag in its periodic statistics, so the drained partition shows 0
    // lag within a few statistics intervals.
    let lag = format!("spamflow_kafka_consumer_lag{{topic=\"{raw}\",partition=\"0\"}}");
    tokio::task::block_in_place(|| {
        eventually(
            Duration::from_secs(30),
            "consumer lag 0 on the raw topic",
            || Ok((sample(&mesh.metrics("email-processor"), &lag) == Some(0.0)).then_some(())),
        )
    })
    .unwrap();

    let handler = mesh.metrics("action-handler");
    assert_eq!(
        counted(
            &handler,
            &format!("spamflow_messages_consumed_total{{topic=\"{verdicts}\"}}")
        ),
        6.0,
        "{handler}"
    );

    let detector = mesh.metrics("spam-detector");
    assert_eq!(
        counted(
            &detector,
            "spamflow_grpc_server_request_duration_seconds_count{method=\"spamflow.v1.SpamDetector/Classify\",code=\"Ok\"}"
        ),
        6.0,
        "{detector}"
    );
    assert!(
        detector.contains("spamflow_model_info{model_version="),
        "{detector}"
    );

    let bloom = mesh.metrics("bloom-filter");
    assert_eq!(
        counted(
            &bloom,
            "spamflow_grpc_server_request_duration_seconds_count{method=\"spamflow.v1.BloomFilter/Check\",code=\"Ok\"}"
        ),
        6.0,
        "{bloom}"
    );
    let fill = counted(&bloom, "spamflow_bloom_fill_ratio");
    assert!((0.0..=1.0).contains(&fill), "{bloom}");
    assert!(
        bloom.contains("spamflow_bloom_estimated_false_positive_rate"),
        "{bloom}"
    );

    for service in SERVICES {
        let (status, body) = http_get(mesh.http_ports[service], "/healthz").unwrap();
        assert_eq!(status, 200, "{service}: {body}");
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["status"], "ok", "{service}: {body}");
    }
    let health: serde_json::Value = serde_json::from_str(
        &http_get(mesh.http_ports["email-processor"], "/healthz")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(health["checks"]["kafka_broker"], true);
    assert_eq!(health["checks"]["kafka_group"], true);
}

/// Renders the spans of one trace as an SVG waterfall: one row per span in start order,
/// indented by depth, with bars on a shared time axis.
fn waterfall_svg(spans: &[ReceivedSpan]) -> String {
    let mut ordered: Vec<&ReceivedSpan> = spans.iter().collect();
    ordered.sort_by_key(|span| span.start_ns);
    let depth = |span: &ReceivedSpan| {
        let mut depth = 0;
        let mut parent = span.parent_span_id.clone();
        while let Some(next) = spans.iter().find(|other| other.span_id == parent) {
            depth += 1;
            parent = next.parent_span_id.clone();
        }
        depth
    };

    let start = ordered.first().map_or(0, |span| span.start_ns);
    let end = ordered
        .iter()
        .map(|span| span.end_ns)
        .max()
        .unwrap_or(start + 1);
    let total = (end - start).max(1) as f64;
    let (label_width, bar_width, row) = (430.0, 520.0, 26.0);
    let height = row * (ordered.len() as f64 + 2.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         font-family=\"monospace\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"8\" y=\"18\" font-weight=\"bold\">One email through spamflow: {} spans, {:.1} ms</text>\n",
        label_width + bar_width + 90.0,
        ordered.len(),
        total / 1e6
    );

    let colors: HashMap<&str, &str> = [
        ("spamctl", "#7e57c2"),
        ("email-processor", "#1e88e5"),
        ("spam-detector", "#43a047"),
        ("bloom-filter", "#fb8c00"),
        ("action-handler", "#e53935"),
    ]
    .into_iter()
    .collect();
    for (index, span) in ordered.iter().enumerate() {
        let y = row * (index as f64 + 1.0) + 8.0;
        let x = label_width + bar_width * (span.start_ns - start) as f64 / total;
        let width = (bar_width * (span.end_ns - span.start_ns) as f64 / total).max(1.5);
        let color = colors.get(span.service.as_str()).unwrap_or(&"#757575");
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\">{}: {}</text>\n<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" \
             height=\"16\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{}\">{:.2} ms</text>\n",
            8 + 14 * depth(span),
            y + 12.0,
            span.service,
            span.name,
            x + width + 4.0,
            y + 12.0,
            (span.end_ns - span.start_ns) as f64 / 1e6
        ));
    }

    svg.push_str("</svg>\n");
    svg
}

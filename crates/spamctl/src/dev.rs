//! `spamctl dev`: the whole mesh in one process on loopback, with librdkafka's mock cluster as
//! the broker, replaying a corpus and scoring the verdicts that come out.
//!
//! Every service runs the same code as its own binary: the detector and the Bloom filter serve
//! gRPC on loopback ports, and the processor and the action handler consume through real
//! Kafka clients. Only the broker is librdkafka's in-process mock, and the store is in memory
//! unless a Redis URL is given.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;
use spamflow_core::Limits;
use spamflow_core::metrics::{Confusion, roc_auc};
use spamflow_proto::v1 as pb;
use spamflow_runtime::grpc::ServerArgs;
use spamflow_runtime::kafka::KafkaArgs;
use spamflow_runtime::pipeline::Stopping;
use spamflow_runtime::store::{RedisArgs, Store};
use tokio::task::JoinHandle;

use crate::corpus::{self, SplitFilter};
use crate::known_spam::KnownSpam;
use crate::report::Summary;

/// `spamctl dev` flags.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Spam to replay: folders (searched recursively) or mbox files. Default:
    /// data/corpus/spam, as fetched by scripts/fetch-corpus.
    #[arg(long, num_args = 1.., value_parser = crate::corpus::existing_path())]
    pub spam: Vec<PathBuf>,
    /// Ham to replay. Default: data/corpus/ham.
    #[arg(long, num_args = 1.., value_parser = crate::corpus::existing_path())]
    pub ham: Vec<PathBuf>,
    /// Part of the TRAIN/TEST split to replay.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitFilter,
    /// Model file for the detector; the shipped default model when absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Partitions of each topic, from 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = spamflow_runtime::kafka::parse_partitions)]
    pub partitions: i32,
    /// gRPC address of the detector; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub detector_addr: SocketAddr,
    /// gRPC address of the Bloom filter; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bloom_addr: SocketAddr,
    /// Give up waiting for verdicts after this many seconds, 1 or more.
    #[arg(
        long,
        default_value_t = 600,
        value_parser = spamflow_runtime::cli::whole_number_from(1u64)
    )]
    pub timeout_secs: u64,
    /// Before replaying, insert into the Bloom filter the fingerprints of the TRAIN spam under
    /// the same paths, less those a TRAIN ham shares, as if a user had confirmed those spam.
    /// Needs `--split test`.
    #[arg(long)]
    pub known_spam: bool,
    /// Print one line per verdict.
    #[arg(long)]
    pub show_verdicts: bool,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Address of the mesh's `/metrics` and `/healthz` endpoint; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9400")]
    pub metrics_addr: SocketAddr,
    /// Keep the mesh and its metrics endpoint running after the summary, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// The scorer's record of one replayed message.
struct Outcome {
    verdict: Option<pb::VerdictEvent>,
}

pub async fn run(args: &DevArgs) -> anyhow::Result<()> {
    if args.known_spam {
        KnownSpam::check_split(args.split)?;
    }
    let (spam, ham) = if args.spam.is_empty() && args.ham.is_empty() {
        let default = PathBuf::from("data/corpus");
        if !default.join("spam").is_dir() || !default.join("ham").is_dir() {
            anyhow::bail!(
                "no corpus at {}/data/corpus, the default without --spam and --ham; run \
                 scripts/fetch-corpus from the repository, or give --spam and --ham",
                std::env::current_dir()
                    .map(|dir| dir.display().to_string())
                    .unwrap_or_else(|_| ".".to_owned())
            );
        }
        (vec![default.join("spam")], vec![default.join("ham")])
    } else {
        (args.spam.clone(), args.ham.clone())
    };
    let messages = corpus::load(&spam, &ham, args.split)?;
    // Accuracy, recall and ROC AUC are undefined without both classes, as in `spamctl eval`.
    corpus::require_both_classes(&messages)?;
    let known = if args.known_spam {
        Some(KnownSpam::from_train_split(&spam, &ham)?)
    } else {
        None
    };

    let model = crate::train::load_model(args.model.as_deref())?;
    let model_version = model.version().to_owned();
    let threshold = model.threshold();
    let list_mail_threshold = model.list_mail_threshold();

    // The broker: librdkafka's mock cluster, alive until this function returns.
    let cluster = MockCluster::new(1).context("failed to start librdkafka's mock cluster")?;
    let prefix = format!("dev{}", spamflow_runtime::now_ms());
    let mut kafka = KafkaArgs::for_brokers(&cluster.bootstrap_servers(), &prefix);
    // The mock cluster delays an empty fetch by the full wait, even when records arrive
    // meanwhile. With the default 500 ms, the first verdict came about 0.5 s after the last
    // record was published.
    kafka.fetch_wait_max_ms = Some(10);
    for (topic, _) in kafka.topics().all() {
        cluster
            .create_topic(topic, args.partitions, 1)
            .with_context(|| format!("failed to create topic {topic} on the mock cluster"))?;
    }

    let store = Store::connect_at_start(&args.redis).await?;
    let (stop, stopping) = Stopping::new();
    let server_args = ServerArgs {
        grpc_timeout_ms: 5_000,
    };

    let detector_listener = spamflow_runtime::grpc::bind(args.detector_addr).await?;
    let detector_addr = detector_listener.local_addr()?;
    let detector = spam_detector::Detector::new(model, Limits::default(), 100);
    let mut tasks: Vec<JoinHandle<anyhow::Result<()>>> = Vec::new();
    {
        let server_args = server_args.clone();
        let mut stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            spam_detector::run(detector, &server_args, detector_listener, async move {
                stopping.wait().await
            })
            .await
        }));
    }

    let bloom_listener = spamflow_runtime::grpc::bind(args.bloom_addr).await?;
    let bloom_addr = bloom_listener.local_addr()?;
    let filter = bloom_filter::Filter::open(store.clone(), 1_000_000, 0.001).await?;
    if let Some(known) = &known {
        // With Redis, an earlier run may have inserted them already, and every insert grows the
        // filter's insert log.
        let mut keys = known.keys();
        keys.retain(|key| !filter.contains(key));
        filter
            .insert(&keys)
            .await
            .context("failed to insert the known-spam fingerprints into the Bloom filter")?;
    }

    // Every in-process service counts into the one process-wide registry, so one endpoint
    // serves the metrics of the whole mesh.
    let readiness = spamflow_runtime::http::Readiness::new(&["mesh"]);
    let refresh_filter = filter.clone();
    let refresh: spamflow_runtime::http::Refresh =
        std::sync::Arc::new(move || refresh_filter.update_metrics());
    let metrics_listener = spamflow_runtime::grpc::bind(args.metrics_addr).await?;
    let metrics_addr = metrics_listener.local_addr()?;
    {
        let readiness = readiness.clone();
        let mut stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            spamflow_runtime::http::serve(metrics_listener, readiness, Some(refresh), async move {
                stopping.wait().await
            })
            .await
            .map_err(anyhow::Error::from)
        }));
    }
    {
        let server_args = server_args.clone();
        let mut stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            bloom_filter::run(filter, &server_args, bloom_listener, async move {
                stopping.wait().await
            })
            .await
        }));
    }

    let processor_config = email_processor::Config {
        kafka: kafka.clone(),
        group_id: email_processor::DEFAULT_GROUP_ID.to_owned(),
        detector_url: format!("http://{detector_addr}"),
        bloom_url: format!("http://{bloom_addr}"),
        rpc_timeout_ms: 5_000,
        concurrency: 32,
        max_message_bytes: Limits::DEFAULT_MAX_MESSAGE_BYTES,
        // The in-process mesh serves no HTTP port; only the binaries read this.
        http_addr: email_processor::DEFAULT_HTTP_ADDR.parse()?,
    };
    let processor = email_processor::Processor::new(&processor_config)?;
    let mut processor_joined = processor.joined();
    {
        let stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            email_processor::run(&processor_config, processor, stopping).await
        }));
    }

    let handler_config = action_handler::Config {
        kafka: kafka.clone(),
        redis: args.redis.clone(),
        // The in-process mesh has no Gmail mailbox, so Gmail actions stay off and the Gmail
        // settings are never used.
        policy: action_handler::config::PolicyArgs::default(),
        gmail: {
            let mut gmail = spamflow_gmail::GmailArgs::for_api(
                spamflow_gmail::DEFAULT_API_URL,
                std::path::PathBuf::new(),
            );
            gmail.credentials_file = None;
            gmail
        },
        group_id: action_handler::DEFAULT_GROUP_ID.to_owned(),
        concurrency: 32,
        http_addr: action_handler::DEFAULT_HTTP_ADDR.parse()?,
    };
    let handler = action_handler::ActionHandler::new(&handler_config, store.clone(), None)?;
    let mut handler_joined = handler.joined();
    let handler_done = handler.handled_counter();
    {
        let stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            action_handler::run(&handler_config, handler, stopping).await
        }));
    }

    if !args.json {
        outln!(
            "spamflow dev: mock Kafka at {}, spam-detector at {detector_addr}, bloom-filter at {bloom_addr}, store {}",
            cluster.bootstrap_servers(),
            if store.is_durable() {
                "Redis"
            } else {
                "in memory"
            }
        )?;
        if let Some(known) = &known {
            outln!(
                "bloom-filter holds the fingerprints of {} TRAIN spam as known spam",
                known.spam_messages
            )?;
        }
        outln!(
            "replaying {} messages ({:?} split)",
            messages.len(),
            args.split
        )?;
    }

    // Subscribe the scorer before publishing so no verdict is missed. It reports its first
    // assignment like the services do, through a readiness of its own that nothing serves.
    let topics = kafka.topics();
    let (scorer_joined_sender, mut scorer_joined) = tokio::sync::watch::channel(false);
    let scorer = spamflow_runtime::kafka::group_consumer(
        &kafka,
        &format!("{prefix}-scorer"),
        scorer_joined_sender,
        spamflow_runtime::http::Readiness::default(),
    )
    .context("failed to create the scoring consumer")?;
    scorer.subscribe(&[topics.verdicts.as_str(), topics.dlq.as_str()])?;
    let mut stream = scorer.stream();

    // The producer starts here, so that it has its idempotent producer id before the clock
    // starts. librdkafka requests one on a 500 ms timer (`rdkafka_idempotence.c`), which added
    // 0.5 or 1 s to the replay when the producer started with the clock.
    // NOTE: nothing waits for the id. Joining the consumer groups below has taken longer than
    // the timer in every run so far.
    let producer: FutureProducer = kafka.producer_config()?.create()?;

    // Publish only once every consumer group has its partitions, so the figures measure the
    // pipeline rather than group joins. The scorer joins only while its stream is polled, and
    // nothing is published yet, so polling it here takes no record.
    let join_timeout = Duration::from_secs(30);
    let scorer_join = async {
        loop {
            tokio::select! {
                joined = scorer_joined.wait_for(|joined| *joined) => {
                    joined.context("the scorer stopped before joining its consumer group")?;
                    return anyhow::Ok(());
                }
                Some(record) = stream.next() => {
                    record.context("failed to read verdicts")?;
                }
            }
        }
    };
    tokio::time::timeout(join_timeout, scorer_join)
        .await
        .with_context(|| {
            format!("the scorer did not join its consumer group within {join_timeout:?}")
        })??;
    for (name, joined) in [
        ("email-processor", &mut processor_joined),
        ("action-handler", &mut handler_joined),
    ] {
        tokio::time::timeout(join_timeout, joined.wait_for(|joined| *joined))
            .await
            .with_context(|| {
                format!("{name} did not join its consumer group within {join_timeout:?}")
            })?
            .with_context(|| format!("{name} stopped before joining its consumer group"))?;
    }

    readiness.set("mesh", true);

    let started = Instant::now();
    let publish_progress = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        crate::train::progress_bar(messages.len() as u64, "replaying")
    };
    let published =
        crate::replay::publish(&producer, &topics.raw, "dev", &messages, &publish_progress).await?;
    publish_progress.finish_and_clear();

    let verdict_progress = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        crate::train::progress_bar(published, "verdicts")
    };
    let mut outcomes: HashMap<String, Outcome> = HashMap::new();
    let mut dead_lettered = 0u64;
    let mut verdict_records = 0u64;
    let deadline = tokio::time::sleep(Duration::from_secs(args.timeout_secs));
    tokio::pin!(deadline);
    while (outcomes.len() as u64) < published {
        let record = tokio::select! {
            record = stream.next() => record,
            () = &mut deadline => break,
        };
        let Some(record) = record else { break };
        let record = record.context("failed to read verdicts")?;
        if record.topic() == topics.verdicts {
            verdict_records += 1;
        }
        let key = record
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        if outcomes.contains_key(&key) {
            continue;
        }
        if record.topic() == topics.dlq {
            dead_lettered += 1;
            outcomes.insert(key, Outcome { verdict: None });
        } else {
            let verdict = pb::VerdictEvent::decode(record.payload().unwrap_or_default()).context(
                "invalid record in the verdicts topic: the value is not a spamflow.v1.VerdictEvent",
            )?;
            if args.show_verdicts {
                let name = |label: i32| {
                    if label == pb::Label::Spam as i32 {
                        "spam"
                    } else {
                        "ham"
                    }
                };
                verdict_progress.suspend(|| {
                    outln!(
                        "{:<48} verdict={:<4} truth={:<4} p={:.4} reason={}",
                        verdict.message_id,
                        name(verdict.label),
                        name(verdict.true_label),
                        verdict.spam_probability,
                        verdict.reason
                    )
                })?;
            }
            outcomes.insert(
                key,
                Outcome {
                    verdict: Some(verdict),
                },
            );
        }
        verdict_progress.inc(1);
    }
    let elapsed = started.elapsed().as_secs_f64();
    verdict_progress.finish_and_clear();
    drop(stream);

    // The action handler reads the same verdicts; let it finish them before stopping, so a
    // store given by SPAMFLOW_REDIS_URL contains every verdict of the run.
    let caught_up = tokio::time::timeout(Duration::from_secs(30), async {
        while handler_done.load(std::sync::atomic::Ordering::Relaxed) < verdict_records {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if caught_up.is_err() {
        tracing::warn!("The action handler did not record every verdict within 30s");
    }

    let missing = published - outcomes.len() as u64;
    let mut confusion = Confusion::default();
    let mut scores = Vec::new();
    let mut latencies_ms = Vec::new();
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for verdict in outcomes.values().filter_map(|o| o.verdict.as_ref()) {
        let is_spam = verdict.true_label == pb::Label::Spam as i32;
        confusion.add(verdict.label == pb::Label::Spam as i32, is_spam);
        scores.push((verdict.spam_probability, is_spam));
        latencies_ms.push((verdict.decided_at_ms - verdict.published_at_ms).max(0) as f64);
        *by_reason.entry(verdict.reason.clone()).or_default() += 1;
    }
    let summary = Summary::new(
        confusion,
        &latencies_ms,
        elapsed,
        Some(roc_auc(&scores)),
        model_version,
        threshold,
    )
    .for_pipeline(dead_lettered, missing, by_reason.clone())
    .with_list_mail_threshold(list_mail_threshold);
    if !args.json {
        outln!(
            "verdicts: {} spam, {} ham; dead-lettered: {dead_lettered}; missing: {missing}",
            confusion.true_positives + confusion.false_positives,
            confusion.true_negatives + confusion.false_negatives,
        )?;
        let reasons: Vec<String> = by_reason.iter().map(|(r, n)| format!("{r}={n}")).collect();
        outln!("decided by: {}", reasons.join(", "))?;
        outln!("latency is from publish to verdict, through Kafka and both gRPC services")?;
    }
    summary.write_to(&mut std::io::stdout().lock(), args.json)?;

    if args.keep_running {
        errln!(
            "The mesh keeps running: metrics at http://{metrics_addr}/metrics, health at \
             http://{metrics_addr}/healthz. Press Ctrl-C to stop."
        );
        spamflow_runtime::shutdown::signal().await;
    }
    let _ = stop.send(true);

    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                error = spamflow_runtime::cli::error_chain(&error),
                "A service failed during shutdown"
            ),
            Err(error) => tracing::warn!(%error, "A service task panicked"),
        }
    }
    if missing > 0 {
        anyhow::bail!(
            "{missing} of {published} messages got no verdict within {}s; raise --timeout-secs or check the logs",
            args.timeout_secs
        );
    }
    Ok(())
}

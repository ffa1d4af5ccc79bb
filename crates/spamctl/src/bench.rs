//! `spamctl bench`: how fast one process judges mail, stage by stage, on a real corpus.
//!
//! It times MIME parsing, tokenizing and scoring in process, then `Classify` round trips to a
//! spam-detector it starts on a loopback port, one at a time and with several in flight. It
//! reports the median and 99th percentile of each stage, the throughput, and the process's
//! peak resident memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt as _;
use serde::Serialize;
use spamflow_core::metrics::percentile;
use spamflow_core::{Email, Limits};
use spamflow_proto::v1 as pb;
use spamflow_proto::v1::spam_detector_client::SpamDetectorClient;
use spamflow_runtime::grpc::ServerArgs;
use spamflow_runtime::pipeline::Stopping;

use crate::corpus::{LabelledPaths, SplitFilter};
use crate::train::load_model;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub corpus: LabelledPaths,
    /// Model file; the shipped default model when absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Part of the TRAIN/TEST split to run on.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitFilter,
    /// Passes over the messages for each stage; more passes give steadier medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Classify requests in flight at once in the concurrent gRPC stage.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The timings of one stage.
#[derive(Debug, Serialize)]
struct Stage {
    name: &'static str,
    messages: usize,
    median_us: f64,
    p99_us: f64,
    messages_per_sec: f64,
}

impl Stage {
    /// Summarizes per-message latencies and the wall time of the whole stage.
    fn new(name: &'static str, latencies_us: &[f64], wall_seconds: f64) -> Self {
        Self {
            name,
            messages: latencies_us.len(),
            median_us: percentile(latencies_us, 50.0),
            p99_us: percentile(latencies_us, 99.0),
            messages_per_sec: latencies_us.len() as f64 / wall_seconds.max(f64::EPSILON),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    model_version: String,
    vocabulary: usize,
    corpus_messages: usize,
    rounds: u32,
    concurrency: u32,
    stages: Vec<Stage>,
    peak_rss_kib: Option<u64>,
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let model = load_model(args.model.as_deref())?;
    let messages = args.corpus.load(args.split)?;
    let raws: Vec<Arc<[u8]>> = messages
        .iter()
        .map(|message| Arc::from(message.raw.as_slice()))
        .collect();
    if raws.is_empty() {
        bail!("no messages to run on: check --spam, --ham and --split");
    }
    let limits = Limits::default();

    // Parse only, then parse and score: the difference is tokenizing and scoring.
    let mut parse_us = Vec::new();
    let mut score_us = Vec::new();
    let started = Instant::now();
    let mut parsed = Vec::with_capacity(raws.len());
    for _ in 0..args.rounds {
        parsed.clear();
        for raw in &raws {
            let begin = Instant::now();
            let email = Email::parse(raw, limits);
            parse_us.push(begin.elapsed().as_secs_f64() * 1e6);
            parsed.push(email);
        }
    }
    let parse_wall = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..args.rounds {
        for email in parsed.iter().flatten() {
            let begin = Instant::now();
            std::hint::black_box(model.score(email));
            score_us.push(begin.elapsed().as_secs_f64() * 1e6);
        }
    }
    let score_wall = started.elapsed().as_secs_f64();

    let mut stages = vec![
        Stage::new("parse", &parse_us, parse_wall),
        Stage::new("tokenize_and_score", &score_us, score_wall),
    ];
    // The email processor dead-letters a message over the size limit instead of sending it to
    // the detector, so the gRPC stages leave such messages out.
    let forwarded: Vec<Arc<[u8]>> = raws
        .iter()
        .filter(|raw| raw.len() <= limits.max_message_bytes)
        .cloned()
        .collect();
    stages.extend(grpc_stages(args, model.clone(), &forwarded).await?);

    let report = Report {
        model_version: model.version().to_owned(),
        vocabulary: model.vocabulary_size(),
        corpus_messages: raws.len(),
        rounds: args.rounds,
        concurrency: args.concurrency,
        stages,
        peak_rss_kib: peak_rss_kib(),
    };
    print(&report, args.json)
}

/// Times `Classify` round trips to an in-process spam-detector on a loopback port: one at a
/// time, then `concurrency` at once.
async fn grpc_stages(
    args: &BenchArgs,
    model: spamflow_core::Model,
    raws: &[Arc<[u8]>],
) -> anyhow::Result<Vec<Stage>> {
    let listener = spamflow_runtime::grpc::bind(([127, 0, 0, 1], 0).into()).await?;
    let address = listener.local_addr()?;
    let detector = spam_detector::Detector::new(model, Limits::default(), 100);
    let (stop, mut stopping) = Stopping::new();
    let server = tokio::spawn(async move {
        let server_args = ServerArgs {
            grpc_timeout_ms: 5_000,
        };
        spam_detector::run(detector, &server_args, listener, async move {
            stopping.wait().await
        })
        .await
    });
    let client = SpamDetectorClient::connect(format!("http://{address}"))
        .await
        .with_context(|| format!("failed to connect to the benchmark's detector at {address}"))?
        .max_decoding_message_size(64 * 1024 * 1024);

    let classify = |client: SpamDetectorClient<tonic::transport::Channel>, raw: Arc<[u8]>| async move {
        let mut client = client;
        let begin = Instant::now();
        client
            .classify(pb::ClassifyRequest {
                content: Some(pb::classify_request::Content::Raw(raw.to_vec())),
                message_id: String::new(),
            })
            .await
            .map(|_| begin.elapsed().as_secs_f64() * 1e6)
    };

    let mut sequential_us = Vec::new();
    let started = Instant::now();
    for _ in 0..args.rounds {
        for raw in raws {
            match classify(client.clone(), raw.clone()).await {
                Ok(us) => sequential_us.push(us),
                // A message the detector rejects (for example an oversized one) is not timed.
                Err(status) if status.code() == tonic::Code::InvalidArgument => {}
                Err(status) => bail!("Classify failed: {status}"),
            }
        }
    }
    let sequential_wall = started.elapsed().as_secs_f64();

    let mut concurrent_us = Vec::new();
    let started = Instant::now();
    for _ in 0..args.rounds {
        let mut results = futures::stream::iter(raws.iter().cloned())
            .map(|raw| classify(client.clone(), raw))
            .buffer_unordered(args.concurrency as usize);
        while let Some(result) = results.next().await {
            match result {
                Ok(us) => concurrent_us.push(us),
                Err(status) if status.code() == tonic::Code::InvalidArgument => {}
                Err(status) => bail!("Classify failed: {status}"),
            }
        }
    }
    let concurrent_wall = started.elapsed().as_secs_f64();

    let _ = stop.send(true);
    server
        .await
        .context("the benchmark's detector task failed")??;
    Ok(vec![
        Stage::new("grpc_classify_sequential", &sequential_us, sequential_wall),
        Stage::new("grpc_classify_concurrent", &concurrent_us, concurrent_wall),
    ])
}

/// Reads the peak resident set size of this process from /proc (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string(report)?)?;
        return Ok(());
    }
    outln!(
        "model {} ({} tokens), {} messages x {} rounds, {} in flight for the concurrent stage",
        report.model_version,
        report.vocabulary,
        report.corpus_messages,
        report.rounds,
        report.concurrency
    )?;
    outln!(
        "{:<26} {:>9} {:>12} {:>12} {:>14}",
        "stage",
        "messages",
        "median µs",
        "p99 µs",
        "messages/s"
    )?;
    for stage in &report.stages {
        outln!(
            "{:<26} {:>9} {:>12.1} {:>12.1} {:>14.1}",
            stage.name,
            stage.messages,
            stage.median_us,
            stage.p99_us,
            stage.messages_per_sec
        )?;
    }
    match report.peak_rss_kib {
        Some(kib) => outln!("peak resident memory {:.1} MiB", kib as f64 / 1024.0)?,
        None => outln!("peak resident memory unknown (no /proc/self/status)")?,
    }
    Ok(())
}

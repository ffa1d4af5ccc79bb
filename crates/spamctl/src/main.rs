//! `spamctl`, the spamflow operator CLI.

#![forbid(unsafe_code)]

/// Writes a line to standard output like `println!`, but returns the error instead of
/// panicking. A closed pipe (`spamctl ... | head`) then ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Writes a line to standard error like `eprintln!`, but ignores a closed or full stream
/// instead of panicking (`spamflow_runtime::cli::print_to_stderr`).
macro_rules! errln {
    ($($arg:tt)*) => {
        spamflow_runtime::cli::print_to_stderr(&format!($($arg)*))
    };
}

mod bench;
mod classify;
mod corpus;
mod dev;
mod evaluation;
mod feedback;
mod known_spam;
mod replay;
mod report;
mod tokens;
mod train;

use clap::{Parser, Subcommand};
use spamflow_runtime::cli;

/// Operator CLI for spamflow: train and evaluate models, classify and replay mail, and run the
/// whole mesh in one process.
#[derive(Debug, Parser)]
#[command(name = "spamctl", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a model on labelled messages and write the model file.
    Train(train::TrainArgs),
    /// Score a model on labelled messages without Kafka.
    Eval(train::EvalArgs),
    /// Classify one message in process and show the features behind the score.
    Classify(classify::ClassifyArgs),
    /// Publish labelled messages into the raw topic.
    Replay(replay::ReplayArgs),
    /// Publish corrections of messages to the feedback topic for the trainer.
    Feedback(feedback::FeedbackArgs),
    /// Create every spamflow topic (already existing ones are left as they are).
    CreateTopics(CreateTopicsArgs),
    /// Run the whole mesh in one process on a corpus and score the verdicts.
    Dev(dev::DevArgs),
    /// Measure parsing, scoring and gRPC classification speed and peak memory on a corpus.
    Bench(bench::BenchArgs),
    /// Print the tokens each message of a corpus becomes, one message per line.
    ///
    /// Each line has four fields separated by tabs: the label (spam or ham), the file name,
    /// the sha256 of the raw message, and the tokens separated by spaces, with white space
    /// inside a token written as `_`. A message goes to TRAIN or TEST by its file name, as in
    /// `spamctl train` and `spamctl eval` (docs/model.md).
    Tokens(tokens::TokensArgs),
}

/// Service name in logs and traces unless `OTEL_SERVICE_NAME` sets another.
const SERVICE_NAME: &str = "spamctl";

fn main() {
    let cli: Cli = cli::parse_or_exit();
    let code = match &cli.command {
        Command::Train(args) => report_error(|| train::run_train(args)),
        Command::Eval(args) => report_error(|| train::run_eval(args)),
        Command::Classify(args) => report_error(|| classify::run(args)),
        Command::Tokens(args) => report_error(|| tokens::run(args)),
        Command::Replay(args) => cli::run_main(SERVICE_NAME, replay::run(args)),
        Command::Feedback(args) => cli::run_main(SERVICE_NAME, feedback::run(args)),
        Command::Dev(args) => cli::run_main(SERVICE_NAME, dev::run(args)),
        Command::Bench(args) => cli::run_main(SERVICE_NAME, bench::run(args)),
        Command::CreateTopics(args) => cli::run_main(SERVICE_NAME, create_topics(args)),
    };
    std::process::exit(code);
}

/// `spamctl create-topics` flags.
#[derive(Debug, clap::Args)]
struct CreateTopicsArgs {
    /// Partitions of each topic, from 1 to 1024.
    #[arg(long, default_value_t = 6, value_parser = spamflow_runtime::kafka::parse_partitions)]
    partitions: i32,
    #[command(flatten)]
    kafka: spamflow_runtime::kafka::KafkaArgs,
}

async fn create_topics(args: &CreateTopicsArgs) -> anyhow::Result<()> {
    spamflow_runtime::kafka::ensure_topics(&args.kafka, args.partitions).await?;
    for (topic, compacted) in args.kafka.topics().all() {
        outln!("{topic}{}", if compacted { " (compacted)" } else { "" })?;
    }
    Ok(())
}

/// Runs a command without a Tokio runtime, with logging only, and turns its result into an
/// exit code.
fn report_error(result: impl FnOnce() -> anyhow::Result<()>) -> i32 {
    // Without a runtime the OTLP exporter cannot start, so this installs logging only.
    spamflow_runtime::telemetry::init(SERVICE_NAME).shutdown();
    match result() {
        Ok(()) => 0,
        // The reader closed standard output (`spamctl tokens ... | head`). The command did
        // nothing wrong, and no one is left to read an error.
        Err(error) if cli::is_broken_pipe(&error) => 0,
        Err(error) => {
            errln!("error: {}", cli::error_chain(&error));
            cli::exit_code_of(&error)
        }
    }
}

//! `spamctl`, the spamflow operator CLI.

#![forbid(unsafe_code)]

mod classify;
mod corpus;
mod dev;
mod replay;
mod report;
mod timefmt;
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
    /// Run the whole mesh in one process on a corpus and score the verdicts.
    Dev(dev::DevArgs),
}

fn main() {
    let cli: Cli = cli::parse_or_exit();
    spamflow_runtime::telemetry::init("spamctl");
    let code = match &cli.command {
        Command::Train(args) => report_error(train::run_train(args)),
        Command::Eval(args) => report_error(train::run_eval(args)),
        Command::Classify(args) => report_error(classify::run(args)),
        Command::Replay(args) => cli::run_main(replay::run(args)),
        Command::Dev(args) => cli::run_main(dev::run(args)),
    };
    std::process::exit(code);
}

fn report_error(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            cli::EXIT_FAILURE
        }
    }
}

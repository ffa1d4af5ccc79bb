//! `spamctl`, the spamflow operator CLI.

#![forbid(unsafe_code)]

mod corpus;
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
}

fn main() {
    let cli: Cli = cli::parse_or_exit();
    spamflow_runtime::telemetry::init("spamctl");
    let result = match &cli.command {
        Command::Train(args) => train::run_train(args),
        Command::Eval(args) => train::run_eval(args),
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(cli::EXIT_FAILURE);
    }
}

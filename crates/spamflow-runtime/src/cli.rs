//! Command-line parsing shared by every binary, with the exit codes operators script against.

use clap::Parser;

/// Exit code for a usage error: a bad flag, a bad environment value (sysexits `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;
/// Exit code for a failure at run time.
pub const EXIT_FAILURE: i32 = 1;

/// Parses the process arguments, exiting 0 for `--help` and `--version` and 64 for a bad
/// flag or environment value, with clap's message naming it.
pub fn parse_or_exit<T: Parser>() -> T {
    parse_with_matches_or_exit().0
}

/// Parses the process arguments like [`parse_or_exit`], and also returns the matches, so a
/// caller can tell a flag given on the command line or in the environment from its default
/// (`ArgMatches::value_source`).
pub fn parse_with_matches_or_exit<T: Parser>() -> (T, clap::ArgMatches) {
    // `from_arg_matches` clones the values it reads; the `_mut` variant would take them out
    // of the matches, and with them the value sources callers look at.
    let parsed = command_of::<T>()
        .try_get_matches()
        .and_then(|matches| T::from_arg_matches(&matches).map(|args| (args, matches)));
    match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            // Printing to a closed stdout or stderr is not worth a panic at exit.
            let _ = error.print();
            std::process::exit(code);
        }
    }
}

/// Builds the command of `T` with every value taking negative numbers, so that `--folds -1`
/// fails on its value and names the flag, instead of reading `-1` as an unknown flag.
pub fn command_of<T: clap::CommandFactory>() -> clap::Command {
    fn allow_negative_numbers(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| {
                let takes_values = arg.get_action().takes_values();
                arg.allow_negative_numbers(takes_values)
            })
            .mut_subcommands(allow_negative_numbers)
    }
    allow_negative_numbers(T::command())
}

/// Parses a probability flag value for clap, so a bad value exits 64 naming the flag.
///
/// # Errors
///
/// Returns a message when the text is not a number between 0 and 1.
pub fn parse_probability(text: &str) -> Result<f64, String> {
    parse_number(
        text,
        |value| (0.0..=1.0).contains(&value),
        "outside [0, 1]",
        "a probability such as 0.7",
    )
}

/// Parses a rate that must lie strictly between 0 and 1, for clap.
///
/// # Errors
///
/// Returns a message when the text is not a number above 0 and below 1.
pub fn parse_open_rate(text: &str) -> Result<f64, String> {
    parse_number(
        text,
        |value| value > 0.0 && value < 1.0,
        "outside (0, 1)",
        "a rate such as 0.001",
    )
}

/// Parses a fixed spam-probability threshold, which must lie strictly between 0 and 1, for
/// clap. A threshold of 0 would flag every message and one of 1 none.
///
/// # Errors
///
/// Returns a message when the text is not a number above 0 and below 1.
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    parse_number(
        text,
        |value| value > 0.0 && value < 1.0,
        "outside (0, 1), where 0 would flag every message and 1 none",
        "a probability such as 0.9",
    )
}

/// Parses a flag value that must be a positive, finite number, for clap.
///
/// # Errors
///
/// Returns a message when the text is not a number above 0.
pub fn parse_positive_number(text: &str) -> Result<f64, String> {
    parse_number(
        text,
        |value| value.is_finite() && value > 0.0,
        "not a positive number",
        "a positive number such as 0.001",
    )
}

/// Parses a number that `accepts`, with messages that quote the text, say the `rule` it
/// breaks and give an `example`.
fn parse_number(
    text: &str,
    accepts: impl Fn(f64) -> bool,
    rule: &str,
    example: &str,
) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number; pass {example}"))?;
    if accepts(value) {
        Ok(value)
    } else {
        Err(format!("{text:?} is {rule}; pass {example}"))
    }
}

/// Returns a clap parser for a whole number of at least `minimum`.
pub fn whole_number_from<T>(minimum: T) -> impl Fn(&str) -> Result<T, String> + Clone
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |text: &str| {
        let value: T = text.trim().parse().map_err(|_| {
            format!("{text:?} is not a whole number; pass one of at least {minimum}")
        })?;
        if value >= minimum {
            Ok(value)
        } else {
            Err(format!(
                "{text:?} is below {minimum}; pass at least {minimum}"
            ))
        }
    }
}

/// Formats an error and its causes as `outer: cause: cause`, like anyhow's `{:#}`, but leaves
/// out a cause whose text already ends the message. Many errors in this workspace print their
/// source in their own message and also return it from `source()`, which `{:#}` repeats.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// The stack of each async runtime worker thread.
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Runs a binary's async main on a multi-threaded runtime with telemetry for `service_name`
/// installed, and turns its result into an exit code: 0 on success, 1 with the error chain on
/// failure. Buffered spans are flushed before it returns.
pub fn run_main<F>(service_name: &str, main: F) -> i32
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // mail-parser copies the messages inside an encoded message part recursively, one
        // frame per message. parse_cost allows 256, and 8 MiB, the usual main thread stack,
        // leaves a wide margin: 2,560 of them overflowed tokio's default of 2 MiB.
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report_failure(&format!("failed to start the async runtime: {error}"));
            return EXIT_FAILURE;
        }
    };
    // The OTLP gRPC exporter must be created inside the runtime it sends from.
    let telemetry = {
        let _entered = runtime.enter();
        crate::telemetry::init(service_name)
    };
    let code = match runtime.block_on(main) {
        Ok(()) => 0,
        // The reader closed standard output (`spamctl dev | head`). The command did nothing
        // wrong, and no one is left to read an error.
        Err(error) if is_broken_pipe(&error) => 0,
        Err(error) => {
            report_failure(&error_chain(&error));
            exit_code_of(&error)
        }
    };
    // The runtime's worker threads still drive the exporter's connection while it flushes.
    telemetry.shutdown();
    // Main has drained its work. A blocking task still running (such as a retrain the trainer
    // abandoned at shutdown) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Prints `error: ` and the message to standard error.
fn report_failure(message: &str) {
    print_to_stderr(&format!("error: {message}"));
}

/// Prints a line to standard error like `eprintln!`, but ignores a closed or full stream
/// instead of panicking, since no one is left to read the line.
pub fn print_to_stderr(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Prints `error: ` and the message to standard error and exits with [`EXIT_USAGE`], for a
/// combination of flags that a binary checks before it starts.
pub fn exit_usage(message: impl std::fmt::Display) -> ! {
    report_failure(&message.to_string());
    std::process::exit(EXIT_USAGE);
}

/// A combination of flags that cannot work together, found after parsing. The binaries exit
/// with [`EXIT_USAGE`] for it, as for a bad flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Returns the exit code for a failed command: [`EXIT_USAGE`] when a [`UsageError`] caused it,
/// else [`EXIT_FAILURE`].
pub fn exit_code_of(error: &anyhow::Error) -> i32 {
    if error.chain().any(|cause| cause.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// Checks whether an error comes from writing to a pipe whose reader has closed it.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("invalid file: {0}")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_skips_repeated_causes() {
        let io = std::io::Error::other("line 1 column 11");
        let error = anyhow::Error::new(Outer(io)).context("failed to load m.json");
        assert_eq!(
            error_chain(&error),
            "failed to load m.json: invalid file: line 1 column 11"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&plain), "outer: inner");
    }
}

//! Command-line parsing shared by every binary, with the exit codes operators script against.

use clap::Parser;

/// Exit code for a usage error: a bad flag, a bad environment value (sysexits `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;
/// Exit code for a failure at run time.
pub const EXIT_FAILURE: i32 = 1;

/// Parses the process arguments, exiting 0 for `--help` and `--version` and 64 for a bad
/// flag or environment value, with clap's message naming it. It also exits 64 for a bad
/// logging or tracing variable ([`crate::telemetry::check_environment`]).
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
        Ok(parsed) => {
            if let Err(message) =
                crate::telemetry::check_environment(|name| std::env::var(name).ok())
            {
                exit_usage(message);
            }
            parsed
        }
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let arguments: Vec<_> = std::env::args_os().collect();
            match environment_note(&command_of::<T>(), &error, &arguments) {
                Some(note) => print_to_stderr(&with_note(&error.render().to_string(), &note)),
                // Printing to a closed stdout or stderr is not worth a panic at exit.
                None => drop(error.print()),
            }
            std::process::exit(code);
        }
    }
}

/// Returns a line naming the environment variable of the flag a clap error is about, saying
/// whether the bad value came from it, or `None` when the flag has no variable. Clap's own
/// message names only the flag, even for a value read from the environment.
fn environment_note(
    command: &clap::Command,
    error: &clap::Error,
    arguments: &[std::ffi::OsString],
) -> Option<String> {
    let clap::error::ContextValue::String(invalid) =
        error.get(clap::error::ContextKind::InvalidArg)?
    else {
        return None;
    };
    let flag = invalid.split_whitespace().next()?;
    let long = flag.strip_prefix("--")?;
    let variable = find_long_arg(command, long)?.get_env()?.to_string_lossy();
    let given = arguments.iter().any(|argument| {
        argument
            .to_str()
            .is_some_and(|text| text == flag || text.starts_with(&format!("{flag}=")))
    });
    Some(if given {
        format!("note: {flag} can also be set with the environment variable {variable}")
    } else {
        format!("note: the value of {flag} came from the environment variable {variable}")
    })
}

/// Inserts `note` into a rendered clap error after its message, before the closing hint.
fn with_note(rendered: &str, note: &str) -> String {
    let message = rendered.trim_end();
    match message.rfind("\n\n") {
        Some(end) => format!("{}\n{note}{}", &message[..end], &message[end..]),
        None => format!("{message}\n{note}"),
    }
}

/// Finds the argument with the long name `long` in `command` or, failing that, in its
/// subcommands.
fn find_long_arg<'a>(command: &'a clap::Command, long: &str) -> Option<&'a clap::Arg> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|subcommand| find_long_arg(subcommand, long))
        })
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

/// An integer type that the whole-number parsers below accept.
pub trait WholeNumber: Copy + std::fmt::Display + TryFrom<i128> + Send + Sync + 'static {
    /// The largest value of the type.
    const MAX: Self;

    /// Widens the value to `i128`, which contains every value of every implementing type.
    fn to_i128(self) -> i128;
}

macro_rules! impl_whole_number {
    ($($type:ty),*) => {
        $(
            impl WholeNumber for $type {
                const MAX: Self = <$type>::MAX;

                fn to_i128(self) -> i128 {
                    i128::try_from(self).expect("the type fits in i128")
                }
            }
        )*
    };
}

impl_whole_number!(u8, u16, u32, u64, usize, i32, i64);

/// Returns a clap parser for a whole number of at least `minimum`, up to the type's maximum.
pub fn whole_number_from<T: WholeNumber>(
    minimum: T,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    whole_number_in(minimum, T::MAX)
}

/// Returns a clap parser for a whole number from `minimum` to `maximum`, both included. Its
/// messages quote the text, say which bound it breaks and give the range to use.
pub fn whole_number_in<T: WholeNumber>(
    minimum: T,
    maximum: T,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |text: &str| parse_whole_number(text, minimum, maximum)
}

fn parse_whole_number<T: WholeNumber>(text: &str, minimum: T, maximum: T) -> Result<T, String> {
    let range = if maximum.to_i128() == T::MAX.to_i128() {
        format!("a whole number of {minimum} or more")
    } else {
        format!("a whole number from {minimum} to {maximum}")
    };
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let value = match trimmed.parse::<i128>() {
        Ok(value) => value,
        // Only a number too long for i128 fails to parse with nothing but digits.
        Err(_) if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) => {
            i128::MAX
        }
        Err(_) => return Err(format!("`{text}` is not a whole number; pass {range}")),
    };
    if value < minimum.to_i128() {
        return Err(format!(
            "`{text}` is below the smallest allowed, {minimum}; pass {range}"
        ));
    }
    if value > maximum.to_i128() {
        return Err(format!(
            "`{text}` is above the largest allowed, {maximum}; pass {range}"
        ));
    }
    T::try_from(value).map_err(|_| format!("`{text}` is out of range; pass {range}"))
}

/// Parses a name that must not be empty, such as a model name, for clap.
///
/// # Errors
///
/// Returns a message when the text is empty or only whitespace.
pub fn parse_non_empty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("the value is empty; pass a name such as default".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// Parses a mailbox name for clap, such as `user@example.com`. Record keys are
/// `mailbox/message-id`, so a `/` in the mailbox would let two messages share a key.
///
/// # Errors
///
/// Returns a message when the name is empty, or contains a `/`, white space or a control
/// character.
pub fn parse_mailbox(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the mailbox is empty; pass its address, such as user@example.com".to_owned());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| *c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "the mailbox contains {bad:?}, which record keys (`mailbox/message-id`) cannot \
             carry; pass its address, such as user@example.com"
        ));
    }
    Ok(text.to_owned())
}

/// Parses the URL of a gRPC service for clap: http or https, a host and, when given, a port
/// from 1 to 65535.
///
/// # Errors
///
/// Returns a message saying which part is missing or invalid.
pub fn parse_grpc_url(text: &str) -> Result<String, String> {
    const EXAMPLE: &str = "pass a URL such as http://127.0.0.1:50051";
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|error| format!("{text:?} is not a URL ({error}); {EXAMPLE}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(scheme) => {
            return Err(format!(
                "{text:?} has the scheme {scheme}, but gRPC runs over http or https; {EXAMPLE}"
            ));
        }
        None => return Err(format!("{text:?} has no scheme (http or https); {EXAMPLE}")),
    }
    let Some(authority) = uri
        .authority()
        .filter(|authority| !authority.host().is_empty())
    else {
        return Err(format!("{text:?} has no host; {EXAMPLE}"));
    };
    // `Authority::port` returns None for a port that does not fit in u16, so the text is
    // split here: the port follows the last `:` after the host, or after `]` in IPv6.
    let host_and_port = authority.as_str().rsplit('@').next().unwrap_or_default();
    let after_host = match host_and_port.rfind(']') {
        Some(end) => &host_and_port[end + 1..],
        None => host_and_port,
    };
    if let Some((_, port)) = after_host.rsplit_once(':')
        && !is_port(port)
    {
        return Err(format!(
            "{text:?} has the port {port}, outside 1 to 65535; {EXAMPLE}"
        ));
    }
    Ok(text.trim().to_owned())
}

/// Checks whether `text` is a TCP port a client can connect to, 1 to 65535.
pub(crate) fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok_and(|port| port != 0)
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
    fn mailbox_names_cannot_break_record_keys() {
        assert_eq!(
            parse_mailbox("user@example.com"),
            Ok("user@example.com".to_owned())
        );
        for bad in ["", "a/b", "a b", "a\u{0}b"] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn whole_number_names_the_broken_bound() {
        let from_one = whole_number_from(1u32);
        assert_eq!(from_one("7"), Ok(7));
        assert_eq!(from_one(" +7 "), Ok(7));
        assert_eq!(
            from_one("-1").unwrap_err(),
            "`-1` is below the smallest allowed, 1; pass a whole number of 1 or more"
        );
        assert_eq!(
            from_one("0").unwrap_err(),
            "`0` is below the smallest allowed, 1; pass a whole number of 1 or more"
        );
        assert_eq!(
            from_one("18446744073709551615").unwrap_err(),
            "`18446744073709551615` is above the largest allowed, 4294967295; pass a whole \
             number of 1 or more"
        );
        let huge = "9".repeat(60);
        assert!(
            from_one(&huge)
                .unwrap_err()
                .contains("above the largest allowed, 4294967295"),
            "{huge}"
        );
        for text in ["NaN", "1e9", "1.5", "", "+", "ten"] {
            let message = from_one(text).unwrap_err();
            assert!(
                message.starts_with(&format!("`{text}` is not a whole number; pass")),
                "{message}"
            );
        }
    }

    #[test]
    fn whole_number_in_checks_both_bounds() {
        let partitions = whole_number_in(1i32, 1024);
        assert_eq!(partitions("1024"), Ok(1024));
        assert_eq!(
            partitions("100000").unwrap_err(),
            "`100000` is above the largest allowed, 1024; pass a whole number from 1 to 1024"
        );
        assert_eq!(
            partitions("0").unwrap_err(),
            "`0` is below the smallest allowed, 1; pass a whole number from 1 to 1024"
        );
        let signed = whole_number_from(i64::MIN);
        assert_eq!(signed("-5"), Ok(-5));
    }

    #[test]
    fn grpc_url_accepts_http_and_https() {
        for url in [
            "http://127.0.0.1:50051",
            "https://detector.example:443",
            "http://[::1]:50051",
            "http://detector",
        ] {
            assert_eq!(parse_grpc_url(url).as_deref(), Ok(url));
        }
    }

    #[test]
    fn grpc_url_rejects_bad_forms() {
        let cases = [
            ("notaurl", "no scheme"),
            ("127.0.0.1:50051", "no scheme"),
            ("ftp://127.0.0.1:1", "scheme ftp"),
            ("http://127.0.0.1:99999", "port 99999, outside 1 to 65535"),
            ("http://127.0.0.1:0", "port 0"),
            ("http://:50051", "no host"),
            ("", "not a URL"),
            ("http://a b", "not a URL"),
        ];
        for (url, reason) in cases {
            let error = parse_grpc_url(url).unwrap_err();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[arg(long, env = "SPAMFLOW_TEST_ITEMS", value_parser = whole_number_from(1u32))]
        items: Option<u32>,
        #[arg(long, value_parser = whole_number_from(1u32))]
        plain: Option<u32>,
    }

    fn note_for(arguments: &[&str]) -> Option<String> {
        let arguments: Vec<std::ffi::OsString> = arguments.iter().map(Into::into).collect();
        let command = command_of::<Flags>();
        // A flag's own value replaces the environment variable, which tests must not set.
        let error = command
            .clone()
            .try_get_matches_from(&arguments)
            .unwrap_err();
        environment_note(&command, &error, &arguments)
    }

    #[test]
    fn note_goes_before_the_hint() {
        let rendered = "error: invalid value\n\nFor more information, try '--help'.\n";
        assert_eq!(
            with_note(rendered, "note: n"),
            "error: invalid value\nnote: n\n\nFor more information, try '--help'."
        );
        assert_eq!(with_note("error: bad\n", "note: n"), "error: bad\nnote: n");
    }

    #[test]
    fn environment_note_names_the_variable() {
        assert_eq!(
            note_for(&["test", "--items", "0"]).as_deref(),
            Some("note: --items can also be set with the environment variable SPAMFLOW_TEST_ITEMS")
        );
        assert_eq!(
            note_for(&["test", "--items=0"]).as_deref(),
            Some("note: --items can also be set with the environment variable SPAMFLOW_TEST_ITEMS")
        );
        assert_eq!(note_for(&["test", "--plain", "0"]), None);
        let command = command_of::<Flags>();
        let error = command
            .clone()
            .try_get_matches_from(["test", "--items", "-1"])
            .unwrap_err();
        assert_eq!(
            environment_note(&command, &error, &["test".into()]).as_deref(),
            Some(
                "note: the value of --items came from the environment variable SPAMFLOW_TEST_ITEMS"
            )
        );
    }

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

//! Labelled message sets read from disk: folders of one message per file, or mbox files.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use spamflow_core::Label;
use spamflow_core::split::Split;

/// One message read from a corpus.
#[derive(Debug, Clone)]
pub struct CorpusMessage {
    /// The file's base name, or `<mbox base name>#<index>` for a message of an mbox file. The
    /// TRAIN/TEST split is decided on this name.
    pub name: String,
    pub label: Label,
    pub raw: Vec<u8>,
}

/// The `--spam` and `--ham` flags of the commands that need both classes.
#[derive(Debug, clap::Args)]
pub struct LabelledPaths {
    /// Folder (searched recursively) or mbox file of spam; repeatable.
    #[arg(long, required = true, num_args = 1.., value_parser = existing_path())]
    pub spam: Vec<PathBuf>,
    /// Folder (searched recursively) or mbox file of ham; repeatable.
    #[arg(long, required = true, num_args = 1.., value_parser = existing_path())]
    pub ham: Vec<PathBuf>,
}

/// Returns the parser of a `--spam` or `--ham` value. It takes any path the OS accepts, UTF-8
/// or not, and rejects one that does not exist, so that the mistake is a usage error (exit 64)
/// that names the flag.
pub fn existing_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PathBufValueParser::new().try_map(|path: PathBuf| match std::fs::metadata(&path) {
        Ok(_) => Ok(path),
        Err(error) => Err(format!(
            "cannot read it ({error}); for the SpamAssassin corpus, run scripts/fetch-corpus first"
        )),
    })
}

impl LabelledPaths {
    /// Reads the messages of the split, as [`load`] does.
    ///
    /// # Errors
    ///
    /// As [`load`].
    pub fn load(&self, split: SplitFilter) -> anyhow::Result<Vec<CorpusMessage>> {
        load(&self.spam, &self.ham, split)
    }
}

/// The messages of a corpus to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitFilter {
    Train,
    Test,
    All,
}

impl SplitFilter {
    /// Returns the value of `--split` that selects this part.
    pub fn flag_value(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "test",
            Self::All => "all",
        }
    }

    fn admits(self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Train => Split::of(name) == Split::Train,
            Self::Test => Split::of(name) == Split::Test,
        }
    }
}

/// Reads every message under the spam and ham paths that the split admits, in a stable order
/// (spam paths first, each sorted by file path).
///
/// # Errors
///
/// Fails naming the flag and path when a path does not exist or cannot be read, naming the
/// message when two share a name, because names become message ids downstream, and when the
/// paths hold no message of the split.
pub fn load(
    spam: &[PathBuf],
    ham: &[PathBuf],
    split: SplitFilter,
) -> anyhow::Result<Vec<CorpusMessage>> {
    let mut messages = Vec::new();
    for (paths, label, flag) in [(spam, Label::Spam, "--spam"), (ham, Label::Ham, "--ham")] {
        for path in paths {
            load_path(path, label, split, &mut messages)
                .with_context(|| format!("{flag} {}", path.display()))?;
        }
    }
    if messages.is_empty() {
        let paths: Vec<String> = spam
            .iter()
            .chain(ham)
            .map(|path| path.display().to_string())
            .collect();
        bail!(
            "no message of the {split} split under {paths}; check the --spam and --ham paths, or \
             choose another part with --split train, test or all",
            split = split.flag_value(),
            paths = paths.join(", "),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for message in &messages {
        if !seen.insert(message.name.as_str()) {
            bail!(
                "two messages are named {}; file names are used as message ids and must be unique \
                 across every --spam and --ham path",
                message.name
            );
        }
    }
    Ok(messages)
}

fn load_path(
    path: &Path,
    label: Label,
    split: SplitFilter,
    out: &mut Vec<CorpusMessage>,
) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path).context(
        "cannot read this path; for the SpamAssassin corpus, run scripts/fetch-corpus first",
    )?;
    if metadata.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        for file in files {
            load_file(&file, label, split, out)?;
        }
        Ok(())
    } else {
        load_file(path, label, split, out)
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("failed to list {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        // Hidden files such as the fetch script's `.complete` marker are not messages.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn load_file(
    path: &Path,
    label: Label,
    split: SplitFilter,
    out: &mut Vec<CorpusMessage>,
) -> anyhow::Result<()> {
    let raw = read_bounded(path, MAX_CORPUS_FILE_BYTES)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let base_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if is_mbox(path, &raw) {
        for (index, message) in split_mbox(&raw).into_iter().enumerate() {
            let name = format!("{base_name}#{index}");
            if split.admits(&name) {
                out.push(CorpusMessage {
                    name,
                    label,
                    raw: message,
                });
            }
        }
    } else if split.admits(&base_name) {
        out.push(CorpusMessage {
            name: base_name,
            label,
            raw,
        });
    }
    Ok(())
}

/// The largest corpus file read: one message, or an mbox file of many. A device such as
/// `/dev/zero` or an endless pipe then gets an error instead of filling memory.
const MAX_CORPUS_FILE_BYTES: u64 = 1024 * 1024 * 1024;

/// Reads a file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut raw = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut raw)?;
    if raw.len() as u64 > limit {
        bail!("the file is larger than {limit} bytes; split it into smaller mbox files");
    }
    Ok(raw)
}

/// An mbox file is named `*.mbox` or contains more than one `From ` separator line. A single
/// message that starts with a `From ` envelope line, as in the SpamAssassin corpus, is one
/// message.
fn is_mbox(path: &Path, raw: &[u8]) -> bool {
    if path.extension().is_some_and(|ext| ext == "mbox") {
        return true;
    }
    raw.starts_with(b"From ")
        && raw.windows(6).filter(|w| w == b"\nFrom ").count() >= 1
        && split_mbox(raw).len() > 1
}

/// Splits an mbox (mboxrd or mboxo) into messages at lines that start with `From `, removing
/// the separator line and one level of `>From ` quoting.
pub fn split_mbox(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") && previous_blank {
            if let Some(message) = current.take() {
                messages.push(message);
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        let Some(message) = current.as_mut() else {
            previous_blank = line.trim_ascii().is_empty();
            continue;
        };
        let unquoted = if line.starts_with(b">")
            && line
                .iter()
                .skip_while(|&&b| b == b'>')
                .take(5)
                .eq(b"From ".iter())
        {
            &line[1..]
        } else {
            line
        };
        message.extend_from_slice(unquoted);
        previous_blank = line.trim_ascii().is_empty();
    }
    if let Some(message) = current {
        messages.push(message);
    }
    messages.retain(|m| !m.trim_ascii().is_empty());
    messages
}

/// Fails when a labelled set lacks a class, which would make scores meaningless.
pub fn require_both_classes(messages: &[CorpusMessage]) -> anyhow::Result<()> {
    let spam = messages.iter().filter(|m| m.label == Label::Spam).count();
    let ham = messages.len() - spam;
    if spam == 0 || ham == 0 {
        bail!(
            "the selected messages hold {spam} spam and {ham} ham; both classes are needed \
             (check the --spam and --ham paths and --split)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_limit_are_not_read_whole() {
        let dir = spamflow_testkit::ScratchDir::new("corpus-limit");
        let file = dir.join("large.mbox");
        std::fs::write(&file, vec![b'a'; 101]).unwrap();
        assert_eq!(read_bounded(&file, 101).unwrap().len(), 101);
        let error = read_bounded(&file, 100).unwrap_err().to_string();
        assert!(error.contains("larger than 100 bytes"), "{error}");
    }

    #[test]
    fn missing_path_names_its_flag() {
        let missing = std::env::temp_dir().join("spamflow-corpus-test-missing");
        let error = load(&[], std::slice::from_ref(&missing), SplitFilter::All).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.starts_with(&format!("--ham {}: cannot read", missing.display())),
            "{message}"
        );
    }

    #[test]
    fn no_message_of_the_split_is_an_error() {
        let dir = std::env::temp_dir().join(format!("spamflow-corpus-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dirs = std::slice::from_ref(&dir);
        let empty = format!("{:#}", load(dirs, &[], SplitFilter::All).unwrap_err());
        assert!(
            empty.contains("no message of the all split under"),
            "{empty}"
        );

        // One file of the TRAIN part: asking for the TEST part finds nothing.
        let name = (0..)
            .map(|n| format!("message-{n}.txt"))
            .find(|name| Split::of(name) == Split::Train)
            .unwrap();
        std::fs::write(dir.join(&name), "Subject: hi\n\nhello\n").unwrap();
        assert_eq!(load(dirs, &[], SplitFilter::Train).unwrap().len(), 1);
        let other = format!("{:#}", load(dirs, &[], SplitFilter::Test).unwrap_err());
        assert!(other.contains("no message of the test split"), "{other}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mbox_splits_on_from_lines() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\nbody\n>From quoted\n\n\
From c@d Mon Jan 1 00:00:00 2024\nSubject: two\n\nbody two\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], b"Subject: one\n\nbody\nFrom quoted\n\n");
        assert_eq!(messages[1], b"Subject: two\n\nbody two\n");
    }

    #[test]
    fn single_message_with_envelope_is_not_mbox() {
        let raw = b"From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\nFrom here on\n";
        assert!(!is_mbox(Path::new("00001.txt"), raw));
    }
}

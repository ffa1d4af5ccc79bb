//! Loads mailboxes from a folder of `.eml` files.
//!
//! Layout: `DIR/*.eml` belong to the default mailbox with INBOX and UNREAD.
//! `DIR/<LABEL>/*.eml` start with that label and UNREAD instead of INBOX. The label is the
//! system label with that id (such as SPAM), else a user label of that name. A subfolder
//! whose name contains `@` is another mailbox with the same layout. Deeper folders, hidden entries and other files are skipped.

use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::error::Error;
use crate::labels::{INBOX, UNREAD};
use crate::mailbox::Mailboxes;
use crate::message::{StoredMessage, date_header_ms, message_id_for_path, snippet};

/// One `.eml` file found in the folder, before it becomes a message.
struct Found {
    mailbox: String,
    label: Option<String>,
    relative_path: String,
    raw: Vec<u8>,
    mtime_ms: i64,
}

/// Reads every mailbox under `dir`; `default_email` owns the top-level files.
///
/// # Errors
///
/// [`Error::NotADirectory`] when `dir` is not a folder, [`Error::Io`] naming the path that
/// could not be read.
pub fn load_mailboxes(
    dir: &Path,
    default_email: &str,
    retention: usize,
) -> Result<Mailboxes, Error> {
    if !dir.is_dir() {
        return Err(Error::NotADirectory(dir.to_path_buf()));
    }
    let mut found = Vec::new();
    for entry in sorted_entries(dir)? {
        let name = file_name(&entry);
        if entry.is_dir() && name.contains('@') {
            scan_mailbox_folder(&entry, &name, &format!("{name}/"), &mut found)?;
        }
    }
    scan_mailbox_folder(dir, default_email, "", &mut found)?;

    let mut mailboxes = Mailboxes::new(default_email, retention);
    for file in found {
        let mailbox = mailboxes.entry(&file.mailbox, retention);
        let mut labels = std::collections::BTreeSet::from([UNREAD.to_owned()]);
        match &file.label {
            Some(folder) => labels.insert(mailbox.labels_mut().id_for_folder(folder)?),
            None => labels.insert(INBOX.to_owned()),
        };
        mailbox.insert_loaded(StoredMessage {
            id: message_id_for_path(&file.relative_path),
            internal_date_ms: date_header_ms(&file.raw).unwrap_or(file.mtime_ms),
            snippet: snippet(&file.raw),
            raw: Arc::new(file.raw),
            labels,
            history_id: 0,
            source: Some(file.relative_path),
        });
    }
    Ok(mailboxes)
}

/// Collects the `.eml` files of one mailbox folder and of its label subfolders.
fn scan_mailbox_folder(
    folder: &Path,
    email: &str,
    prefix: &str,
    found: &mut Vec<Found>,
) -> Result<(), Error> {
    for entry in sorted_entries(folder)? {
        let name = file_name(&entry);
        if entry.is_dir() {
            if name.contains('@') {
                continue;
            }
            for file in sorted_entries(&entry)? {
                if is_eml(&file) {
                    let relative_path = format!("{prefix}{name}/{}", file_name(&file));
                    found.push(read_eml(&file, email, Some(name.clone()), relative_path)?);
                }
            }
        } else if is_eml(&entry) {
            let relative_path = format!("{prefix}{name}");
            found.push(read_eml(&entry, email, None, relative_path)?);
        }
    }
    Ok(())
}

fn read_eml(
    path: &Path,
    email: &str,
    label: Option<String>,
    relative_path: String,
) -> Result<Found, Error> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io_error)?;
    let mtime_ms = std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .map_err(io_error)?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        });
    Ok(Found {
        mailbox: email.to_owned(),
        label,
        relative_path,
        raw,
        mtime_ms,
    })
}

/// Returns the visible entries of `dir`, sorted by name so loading order is reproducible.
fn sorted_entries(dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let io_error = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if !file_name(&path).starts_with('.') {
            entries.push(path);
        }
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_eml(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("eml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::DEFAULT_HISTORY_RETENTION;

    const RAW: &str = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";

    fn write(dir: &Path, relative: &str) {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, RAW).expect("write");
    }

    #[test]
    fn loads_layout_with_labels_and_mailboxes() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.eml");
        write(dir.path(), "SPAM/b.eml");
        write(dir.path(), "Receipts/c.eml");
        write(dir.path(), "other@example.com/d.eml");
        write(dir.path(), "other@example.com/SPAM/e.eml");
        write(dir.path(), "notes.txt");
        write(dir.path(), ".hidden.eml");

        let mailboxes =
            load_mailboxes(dir.path(), "Me@Example.com", DEFAULT_HISTORY_RETENTION).expect("load");
        let me = mailboxes.get(None).expect("default mailbox");
        assert_eq!(me.email(), "me@example.com");
        assert_eq!(me.messages().count(), 3);
        let inbox = me
            .get(&message_id_for_path("a.eml"))
            .expect("top-level file");
        assert!(inbox.labels.contains("INBOX"));
        assert!(inbox.labels.contains("UNREAD"));
        let spam = me
            .get(&message_id_for_path("SPAM/b.eml"))
            .expect("spam file");
        assert!(spam.labels.contains("SPAM"));
        assert!(!spam.labels.contains("INBOX"));
        let receipts = me.labels().find_by_name("Receipts").expect("user label");
        let c = me
            .get(&message_id_for_path("Receipts/c.eml"))
            .expect("file");
        assert!(c.labels.contains(&receipts.id));
        assert_eq!(me.history_id(), 4);

        let other = mailboxes
            .get(Some("OTHER@example.com"))
            .expect("other mailbox");
        assert_eq!(other.messages().count(), 2);
        assert!(
            other
                .get(&message_id_for_path("other@example.com/SPAM/e.eml"))
                .is_ok()
        );
    }

    #[test]
    fn reloading_gives_the_same_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "a.eml");
        write(dir.path(), "SPAM/b.eml");
        let ids = |mailboxes: &Mailboxes| -> Vec<String> {
            mailboxes
                .get(None)
                .expect("default")
                .messages()
                .map(|message| message.id.clone())
                .collect()
        };
        let first = load_mailboxes(dir.path(), "me@example.com", 10).expect("load");
        let second = load_mailboxes(dir.path(), "me@example.com", 10).expect("reload");
        assert_eq!(ids(&first), ids(&second));
    }

    #[test]
    fn missing_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        assert!(matches!(
            load_mailboxes(&missing, "me@example.com", 10),
            Err(Error::NotADirectory(path)) if path == missing
        ));
    }
}

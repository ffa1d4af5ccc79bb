//! Durable storage of corrections as `.eml` files, and atomic file writes.
//!
//! A correction of the message with record key `K` lives at `feedback/<label>/<H>.eml` under
//! the model folder, where `H` is the first 32 hex digits of sha256(`K`). One file name per
//! message makes storing idempotent: a redelivered correction rewrites nothing, and a later
//! correction with the other label moves the file, so the latest label wins. Files are
//! written to a temporary name, synced and renamed, so a crash leaves either the old or the new
//! file, never a partial one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use spamflow_core::Label;

/// Folder of the corrections, below the model folder.
pub const FEEDBACK_DIR: &str = "feedback";

/// The effect of storing a correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The message or its label is new.
    New,
    /// The same message with the same label was already stored.
    Unchanged,
}

/// One stored correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCorrection {
    pub label: Label,
    pub path: PathBuf,
}

/// The corrections under one model folder.
#[derive(Debug, Clone)]
pub struct CorrectionStore {
    root: PathBuf,
}

impl CorrectionStore {
    /// Opens the store under `model_dir`, creating its folders.
    ///
    /// # Errors
    ///
    /// Fails naming the folder when it cannot be created.
    pub fn open(model_dir: &Path) -> std::io::Result<Self> {
        let root = model_dir.join(FEEDBACK_DIR);
        for label in [Label::Ham, Label::Spam] {
            let dir = root.join(label.as_str());
            std::fs::create_dir_all(&dir).map_err(|error| with_path(error, &dir))?;
        }
        Ok(Self { root })
    }

    /// Returns the path a correction of `key` with `label` is stored at.
    pub fn path(&self, key: &str, label: Label) -> PathBuf {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        self.root
            .join(label.as_str())
            .join(format!("{}.eml", &digest[..32]))
    }

    /// Stores `raw` as the correction of `key` with `label`, replacing a correction of the
    /// same key with the other label.
    ///
    /// # Errors
    ///
    /// Fails naming the file when it cannot be read, written or removed.
    pub fn save(&self, key: &str, label: Label, raw: &[u8]) -> std::io::Result<Stored> {
        let target = self.path(key, label);
        let other_label = match label {
            Label::Ham => Label::Spam,
            Label::Spam => Label::Ham,
        };
        let other = self.path(key, other_label);

        let unchanged = match std::fs::read(&target) {
            Ok(existing) => existing == raw,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(with_path(error, &target)),
        };
        if !unchanged {
            write_atomic(&target, raw)?;
        }
        let moved = match std::fs::remove_file(&other) {
            Ok(()) => {
                sync_parent(&other)?;
                true
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            Err(error) => return Err(with_path(error, &other)),
        };
        Ok(if unchanged && !moved {
            Stored::Unchanged
        } else {
            Stored::New
        })
    }

    /// Lists every stored correction, sorted by path.
    ///
    /// # Errors
    ///
    /// Fails naming the folder when it cannot be read.
    pub fn list(&self) -> std::io::Result<Vec<StoredCorrection>> {
        let mut corrections = Vec::new();
        for label in [Label::Ham, Label::Spam] {
            let dir = self.root.join(label.as_str());
            let entries = std::fs::read_dir(&dir).map_err(|error| with_path(error, &dir))?;
            for entry in entries {
                let path = entry.map_err(|error| with_path(error, &dir))?.path();
                if path.extension().is_some_and(|ext| ext == "eml") {
                    corrections.push(StoredCorrection { label, path });
                }
            }
        }
        corrections.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(corrections)
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file in the same folder, synced, then
/// renamed over `path`, and the folder synced so the rename survives a crash.
///
/// # Errors
///
/// Fails naming the file when a step fails; the temporary file is removed then.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(|error| with_path(error, path))
}

/// Syncs the folder containing `path`, so a rename or removal in it is durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) => std::fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Adds the path to an I/O error, which alone would not say which file failed.
fn with_path(error: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamflow_testkit::ScratchDir;

    #[test]
    fn same_correction_is_stored_once() {
        let dir = ScratchDir::new("trainer-store-once");
        let store = CorrectionStore::open(&dir).unwrap();
        assert_eq!(
            store.save("box/1", Label::Spam, b"raw").unwrap(),
            Stored::New
        );
        assert_eq!(
            store.save("box/1", Label::Spam, b"raw").unwrap(),
            Stored::Unchanged
        );
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn latest_label_wins() {
        let dir = ScratchDir::new("trainer-store-latest");
        let store = CorrectionStore::open(&dir).unwrap();
        store.save("box/1", Label::Spam, b"raw").unwrap();
        assert_eq!(
            store.save("box/1", Label::Ham, b"raw").unwrap(),
            Stored::New
        );
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].label, Label::Ham);
        assert_eq!(listed[0].path, store.path("box/1", Label::Ham));
        assert_eq!(std::fs::read(&listed[0].path).unwrap(), b"raw");
    }

    #[test]
    fn changed_message_counts_as_new() {
        let dir = ScratchDir::new("trainer-store-changed");
        let store = CorrectionStore::open(&dir).unwrap();
        store.save("box/1", Label::Spam, b"first").unwrap();
        assert_eq!(
            store.save("box/1", Label::Spam, b"second").unwrap(),
            Stored::New
        );
        assert_eq!(
            std::fs::read(store.path("box/1", Label::Spam)).unwrap(),
            b"second"
        );
    }

    #[test]
    fn write_error_names_the_file() {
        let dir = ScratchDir::new("trainer-store-error");
        let error = write_atomic(&dir.join("missing/model.json"), b"x").unwrap_err();
        assert!(error.to_string().contains("missing/model.json"), "{error}");
    }
}

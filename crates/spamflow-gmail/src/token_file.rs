//! The installed-app token cache on disk, replaced atomically on every write.
//!
//! yup-oauth2's own disk storage truncates the file and then writes it, so a crash or a
//! reader in between finds an empty or half-written cache, and the next start fails until the
//! user signs in again. [`TokenFile`] writes a temporary file in the same folder, flushes it to
//! disk and renames it over the cache, so the file is always either the old cache or the new
//! one. It reads and writes yup-oauth2's format (a JSON array of `{"scopes", "token"}`
//! objects), so caches written by either one keep working.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use google_gmail1::yup_oauth2::storage::{TokenInfo, TokenStorage, TokenStorageError};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::GmailError;

/// One cached token and the scopes it was granted for.
#[derive(Clone, Serialize, Deserialize)]
struct CachedToken {
    scopes: Vec<String>,
    token: TokenInfo,
}

/// A token cache file for yup-oauth2's `with_storage`.
pub(crate) struct TokenFile {
    path: PathBuf,
    tokens: Mutex<Vec<CachedToken>>,
}

impl TokenFile {
    /// Reads the cache at `path`; a missing file is an empty cache.
    ///
    /// # Errors
    ///
    /// [`GmailError::TokenFile`] when the file cannot be read or is not a token cache.
    pub(crate) fn open(path: &Path) -> Result<Self, GmailError> {
        let tokens = match std::fs::read(path) {
            // Only the error's kind and place: serde_json's message may quote a token.
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| GmailError::TokenFile {
                path: path.to_owned(),
                detail: format!(
                    "it is not a token cache (JSON {:?} error at line {}, column {}); delete it \
                     and sign in again with `gmail-integration auth`",
                    error.classify(),
                    error.line(),
                    error.column()
                ),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(GmailError::TokenFile {
                    path: path.to_owned(),
                    detail: format!("failed to read it: {error}"),
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            tokens: Mutex::new(tokens),
        })
    }
}

#[async_trait::async_trait]
impl TokenStorage for TokenFile {
    async fn set(&self, scopes: &[&str], token: TokenInfo) -> Result<(), TokenStorageError> {
        let mut tokens = self.tokens.lock().await;
        match tokens
            .iter_mut()
            .find(|cached| same_scopes(&cached.scopes, scopes))
        {
            Some(cached) => cached.token = token,
            None => tokens.push(CachedToken {
                scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
                token,
            }),
        }
        let json = serde_json::to_vec(&*tokens)
            .map_err(|error| TokenStorageError::Other(error.to_string().into()))?;
        // The lock stays held so that two writes cannot finish in the wrong order.
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || replace_file(&path, &json))
            .await
            .map_err(|error| TokenStorageError::Other(error.to_string().into()))??;
        Ok(())
    }

    async fn get(&self, scopes: &[&str]) -> Option<TokenInfo> {
        let tokens = self.tokens.lock().await;
        // A token for exactly these scopes first, else one granted for more.
        tokens
            .iter()
            .find(|cached| same_scopes(&cached.scopes, scopes))
            .or_else(|| {
                tokens.iter().find(|cached| {
                    scopes
                        .iter()
                        .all(|scope| cached.scopes.iter().any(|granted| granted == scope))
                })
            })
            .map(|cached| cached.token.clone())
    }
}

/// Compares scope lists as sets: yup-oauth2 passes them sorted and without repeats, while
/// files it wrote itself keep the order the program asked for.
fn same_scopes(cached: &[String], scopes: &[&str]) -> bool {
    cached
        .iter()
        .all(|granted| scopes.contains(&granted.as_str()))
        && scopes
            .iter()
            .all(|scope| cached.iter().any(|granted| granted == scope))
}

/// Writes `contents` to a new temporary file beside `path`, readable by the owner only,
/// flushes it to disk and renames it over `path`. A symlinked cache is written through the
/// link, as yup-oauth2 did. Where a rename cannot replace the file, as with a single file
/// bind-mounted into a container (`EBUSY`), the file is rewritten in place instead.
fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        // A missing file, or a link to a file not yet written.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::read_link(path) {
                Ok(link) => path.parent().unwrap_or(Path::new("")).join(link),
                Err(_) => path.to_owned(),
            }
        }
        Err(error) => return Err(error),
    };
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Services run as PID 1 in their containers, so the process id alone is not unique
    // among processes that share a token folder.
    let temporary = target.with_file_name(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    ));
    let replaced = (|| {
        let mut file = owner_only_options().create_new(true).open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &target)
    })();
    let Err(error) = replaced else {
        remove_stale_temporaries(&target, &name);
        return Ok(());
    };
    // The cache itself is untouched, so only the temporary file needs removing.
    let _ = std::fs::remove_file(&temporary);
    let rename_impossible = matches!(
        error.kind(),
        std::io::ErrorKind::ResourceBusy | std::io::ErrorKind::CrossesDevices
    );
    if !rename_impossible {
        return Err(error);
    }
    // NOTE: no test covers this path, because it needs a bind mount.
    let mut file = owner_only_options().truncate(true).open(&target)?;
    file.write_all(contents)?;
    file.sync_all()?;
    remove_stale_temporaries(&target, &name);
    Ok(())
}

/// Minimum age of a temporary file beside the cache before a later write removes it. A write
/// takes milliseconds, so an older one was left by a process that stopped between writing and
/// renaming.
const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(600);

/// Removes temporary files of the cache `target` (named `name`) older than
/// [`STALE_TEMPORARY_AGE`]. Each contains a refresh token, so none should outlive its writer.
/// Failures are ignored: the cache itself is already written.
fn remove_stale_temporaries(target: &Path, name: &str) {
    let Some(folder) = target.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        if !is_temporary_of(&entry.file_name().to_string_lossy(), name) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMPORARY_AGE);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Checks whether `file_name` is a temporary file of the cache `name`, as [`replace_file`]
/// names them: `.{name}.{process id}.{16 hex digits}.tmp`. A sibling cache whose name starts
/// with `name` (`token.json.work`) does not match.
fn is_temporary_of(file_name: &str, name: &str) -> bool {
    let Some(middle) = file_name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    let Some((pid, random)) = middle.split_once('.') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|byte| byte.is_ascii_digit())
        && random.len() == 16
        && random.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Returns options that create or open a file for writing, readable by its owner only.
fn owner_only_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    const SCOPE: &str = "https://www.googleapis.com/auth/gmail.modify";

    fn token(access: &str) -> TokenInfo {
        TokenInfo {
            access_token: Some(access.to_owned()),
            refresh_token: Some("refresh".to_owned()),
            expires_at: None,
            id_token: None,
        }
    }

    #[tokio::test]
    async fn token_file_round_trips_without_leftover_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let cache = TokenFile::open(&path).unwrap();
        assert!(cache.get(&[SCOPE]).await.is_none());
        cache.set(&[SCOPE], token("first")).await.unwrap();
        cache.set(&[SCOPE], token("second")).await.unwrap();

        let reopened = TokenFile::open(&path).unwrap();
        let read = reopened.get(&[SCOPE]).await.unwrap();
        assert_eq!(read.access_token.as_deref(), Some("second"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["token.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn stale_temporaries_removed_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        let left = dir.path().join(".token.json.1.00000000000000aa.tmp");
        let in_flight = dir.path().join(".token.json.7.00000000000000bb.tmp");
        let other = dir.path().join(".other.json.1.00000000000000cc.tmp");
        let sibling = dir.path().join(".token.json.work.1.00000000000000dd.tmp");
        let long_ago = SystemTime::now() - 2 * STALE_TEMPORARY_AGE;
        for file in [&left, &in_flight, &other, &sibling] {
            std::fs::write(file, "refresh").unwrap();
        }
        for file in [&left, &other, &sibling] {
            std::fs::File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }

        let cache = TokenFile::open(&path).unwrap();
        cache.set(&[SCOPE], token("after")).await.unwrap();

        assert!(!left.exists(), "a stale temporary file stayed");
        assert!(
            in_flight.exists(),
            "a recent one may belong to a running writer"
        );
        assert!(other.exists(), "another cache's file was removed");
        assert!(sibling.exists(), "a sibling cache's file was removed");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn token_file_writes_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("token.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let cache = TokenFile::open(&link).unwrap();
        cache.set(&[SCOPE], token("through")).await.unwrap();

        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let reopened = TokenFile::open(&real).unwrap();
        let read = reopened.get(&[SCOPE]).await.unwrap();
        assert_eq!(read.access_token.as_deref(), Some("through"));
    }

    #[tokio::test]
    async fn token_file_reads_yup_oauth2_caches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        std::fs::write(
            &path,
            format!(
                r#"[{{"scopes":["{SCOPE}","openid"],"token":{{"access_token":"a","refresh_token":"r","expires_at":null,"id_token":null}}}}]"#
            ),
        )
        .unwrap();
        let cache = TokenFile::open(&path).unwrap();
        let exact = cache.get(&["openid", SCOPE]).await.unwrap();
        assert_eq!(exact.refresh_token.as_deref(), Some("r"));
        assert!(
            cache.get(&[SCOPE]).await.is_some(),
            "a subset of the scopes"
        );
        assert!(cache.get(&["other"]).await.is_none());
    }

    #[test]
    fn token_file_rejects_a_damaged_cache_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        std::fs::write(
            &path,
            r#"[{"scopes":["x"],"token":{"access_token":["secret-value"]}}]"#,
        )
        .unwrap();
        let Err(error) = TokenFile::open(&path) else {
            panic!("a damaged cache was accepted");
        };
        let message = error.to_string();
        assert!(message.contains("token.json"), "{message}");
        assert!(message.contains("sign in again"), "{message}");
        assert!(!message.contains("secret-value"), "{message}");
    }
}

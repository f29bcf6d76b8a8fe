//! The file mailer: each message becomes `<dir>/<message id>.eml`, the
//! e-mail exactly as it would go to an SMTP server. For local runs
//! (`emporium up` points it at `<data dir>/mail`), where any mail client
//! opens the files.
//!
//! A file appears whole or not at all: it is written to a hidden temporary
//! name in the same directory (`.<id>.eml.tmp`), flushed to disk, then
//! renamed, and the directory is synced so the rename survives a power loss.
//! Writing the same message again replaces its file with identical bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::MessageId;

use super::MailError;

/// Writes e-mails into one directory.
#[derive(Debug, Clone)]
pub struct FileMailer {
    dir: PathBuf,
}

impl FileMailer {
    /// A mailer writing to `dir`, created (with its parents) if missing.
    pub fn new(dir: &Path) -> Result<Self, MailError> {
        std::fs::create_dir_all(dir).map_err(|e| MailError::Setup {
            mailer: "file",
            reason: format!("cannot create {}: {e}", dir.display()),
        })?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file message `id` is written to.
    pub fn path_of(&self, id: MessageId) -> PathBuf {
        self.dir.join(format!("{id}.eml"))
    }

    /// Writes `bytes` as message `id`'s file; returns once it is durable.
    pub async fn write(&self, id: MessageId, bytes: Vec<u8>) -> Result<(), MailError> {
        let dir = self.dir.clone();
        let target = self.path_of(id);
        let temp = dir.join(format!(".{id}.eml.tmp"));
        let failed = |path: &Path, source| MailError::Write {
            path: path.display().to_string(),
            source,
        };
        tokio::task::spawn_blocking(move || {
            let written = (|| {
                let mut file = std::fs::File::create(&temp)?;
                file.write_all(&bytes)?;
                file.sync_all()
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&temp);
                return Err(failed(&temp, e));
            }
            std::fs::rename(&temp, &target).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                failed(&target, e)
            })?;
            sync_dir(&dir).map_err(|e| failed(&dir, e))
        })
        .await
        .map_err(|e| MailError::Write {
            path: self.dir.display().to_string(),
            source: std::io::Error::other(e),
        })?
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is as
    // durable as the platform makes it.
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn writes_one_file_per_message_and_leaves_no_temporary_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data").join("mail");
        let mailer = FileMailer::new(&dir).unwrap();
        let (a, b) = (MessageId::generate(), MessageId::generate());
        mailer.write(a, b"first".to_vec()).await.unwrap();
        mailer.write(b, b"second".to_vec()).await.unwrap();
        mailer.write(a, b"first".to_vec()).await.unwrap();
        let mut expected = vec![format!("{a}.eml"), format!("{b}.eml")];
        expected.sort();
        assert_eq!(names(&dir), expected);
        assert_eq!(std::fs::read(mailer.path_of(a)).unwrap(), b"first");
        assert_eq!(std::fs::read(mailer.path_of(b)).unwrap(), b"second");
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(root.path()).unwrap();
        let id = MessageId::generate();
        // A directory where the file should go makes the rename fail.
        std::fs::create_dir(mailer.path_of(id)).unwrap();
        std::fs::write(mailer.path_of(id).join("keep"), b"x").unwrap();
        let err = mailer.write(id, b"mail".to_vec()).await.unwrap_err();
        assert!(matches!(err, MailError::Write { .. }), "{err}");
        assert!(err.is_transient());
        assert_eq!(names(root.path()), [format!("{id}.eml")]);
    }
}

//! Writing a user's file so that it is either all old or all new, never half-written.
//!
//! Every file codex writes for the user (`-o`, `--record`, a saved definition) goes
//! through [`write`]: the bytes go to a temporary file in the same directory, which is
//! fsynced and renamed over the target, and then the directory is fsynced so the rename
//! itself survives a crash. A failure at any step (a full disk, a read-only directory)
//! removes the temporary file and leaves the old content as it was, and the error says so.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Replace it (`-o`, `--record`, `--save --force`).
    Allowed,
    /// Refuse, atomically: a file created meanwhile is never overwritten.
    Refused,
}

/// What [`write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file has the new content.
    Done,
    /// The file exists and [`Replace::Refused`] was asked: nothing was written.
    Exists,
}

/// Writes `bytes` to `path` atomically (see the module docs). An error means the file
/// was not written and says whether it kept its old content.
pub fn write(path: &Path, bytes: &[u8], replace: Replace) -> Result<Written> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let unchanged = || {
        if path.exists() {
            format!(
                "{} was not written (its old content is unchanged)",
                path.display()
            )
        } else {
            format!("{} was not written", path.display())
        }
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".codex-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot create a file in {}", unchanged(), dir.display()))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .with_context(unchanged)?;
    match replace {
        Replace::Allowed => temp.persist(path).map(drop).map_err(|e| e.error),
        Replace::Refused => match temp.persist_noclobber(path) {
            Ok(_) => Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(Written::Exists)
            }
            Err(e) => Err(e.error),
        },
    }
    .with_context(unchanged)?;
    // The rename is durable once the directory is; a failure here leaves the new content
    // in place, which is what the caller asked for.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Written::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "old").unwrap();
        let written = write(&path, b"new", Replace::Allowed).unwrap();
        assert_eq!(written, Written::Done);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn an_existing_file_is_kept_when_replacing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "mine").unwrap();
        let written = write(&path, b"new", Replace::Refused).unwrap();
        assert_eq!(written, Written::Exists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }

    #[test]
    fn a_failed_write_says_the_old_content_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir/out.json");
        let e = write(&path, b"new", Replace::Allowed).unwrap_err();
        assert!(format!("{e:#}").contains("was not written"), "{e:#}");
    }
}

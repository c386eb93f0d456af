//! Opening files and directories beneath the workspace root without following symlinks.
//!
//! Paths reaching this module are already resolved (see [`super::paths`]), so none of their
//! components should be a symlink. Rather than trusting that the filesystem did not change
//! since, every component is opened relative to its parent's descriptor (`openat`) with
//! `O_NOFOLLOW`: a symlink swapped in anywhere along the way makes the open fail (`ELOOP` or
//! `ENOTDIR`) instead of leading out of the workspace. Writes go through a temporary file in
//! the same directory and `renameat`, both relative to the same directory descriptor.
//!
//! Hard links: a hard link cannot be resolved to "where the file really is"; its other
//! names may be outside the workspace (a file planted with `ln ~/.ssh/id_rsa notes.txt`).
//! [`open_file`] therefore refuses to read a regular file with more than one link
//! ([`is_hard_link_refusal`]). Writes need no such rule: [`write_atomic`] replaces the
//! directory entry with a new file (`renameat`) and never writes through the old inode, so
//! the other names of a hard-linked file keep their content. [`remove_file`] likewise only
//! removes the workspace's name.
//!
//! Unix only; the descriptors are `rustix` owned descriptors, so no `unsafe` is needed.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Opens the directory at `rel` (relative to `root`; `""` is the root itself).
pub fn open_dir(root: &Path, rel: &Path) -> io::Result<OwnedFd> {
    let mut dir = open_root(root)?;
    for name in components(rel)? {
        dir = open_subdir(&dir, name, false)?;
    }
    Ok(dir)
}

/// Opens the regular file (or directory) at `rel` for reading, refusing symlinks and
/// regular files with more than one hard link.
pub fn open_file(root: &Path, rel: &Path) -> io::Result<File> {
    let (dir, name) = open_parent(root, rel, false)?;
    let fd = rfs::openat(&dir, name, read_flags(), Mode::empty())?;
    let st = rfs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_nlink > 1 {
        return Err(io::Error::other(HardLinked));
    }
    Ok(File::from(fd))
}

/// The error [`open_file`] gives for a regular file with more than one hard link.
#[derive(Debug)]
pub struct HardLinked;

impl std::fmt::Display for HardLinked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file has several hard links (another name may be outside the workspace)")
    }
}

impl std::error::Error for HardLinked {}

/// Whether `e` is [`open_file`]'s refusal of a hard-linked file.
pub fn is_hard_link_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<HardLinked>())
}

/// Removes the regular file at `rel` (its workspace name only), refusing symlinks on the
/// way and anything that is not a regular file.
pub fn remove_file(root: &Path, rel: &Path) -> io::Result<()> {
    let (dir, name) = open_parent(root, rel, false)?;
    match entry_type(&dir, name)? {
        Some((FileType::RegularFile, _)) => Ok(rfs::unlinkat(&dir, name, AtFlags::empty())?),
        Some((FileType::Symlink, _)) => {
            Err(io::Error::from_raw_os_error(Errno::LOOP.raw_os_error()))
        }
        Some(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )),
        None => Err(io::Error::from(io::ErrorKind::NotFound)),
    }
}

/// The file type of `name` in `dir`, without following a symlink; `None` if it is missing.
pub fn entry_type(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<(FileType, Mode)>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some((
            FileType::from_raw_mode(st.st_mode),
            Mode::from_raw_mode(st.st_mode),
        ))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Atomically replaces (or creates) the file at `rel` with `content`, creating missing
/// parent directories. Refuses if the target is a symlink or a directory.
pub fn write_atomic(root: &Path, rel: &Path, content: &[u8]) -> io::Result<()> {
    let (dir, name) = open_parent(root, rel, true)?;
    let mode = writable_target(&dir, name)?;
    let tmp = temp_name(name);
    let result = fill_and_rename(&dir, &tmp, name, mode, content);
    if result.is_err() {
        let _ = rfs::unlinkat(&dir, &tmp, AtFlags::empty());
    }
    result
}

/// Whether `e` means a symlink was in the way of an `O_NOFOLLOW` open.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

/// Opens the parent directory of `rel` (creating it if `create`) and returns the final name.
fn open_parent<'a>(root: &Path, rel: &'a Path, create: bool) -> io::Result<(OwnedFd, &'a OsStr)> {
    let names = components(rel)?;
    let Some((last, parents)) = names.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name"));
    };
    let mut dir = open_root(root)?;
    for name in parents {
        dir = open_subdir(&dir, name, create)?;
    }
    Ok((dir, last))
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(root, dir_flags(), Mode::empty())?)
}

fn open_subdir(dir: &OwnedFd, name: &OsStr, create: bool) -> io::Result<OwnedFd> {
    match rfs::openat(dir, name, dir_flags() | OFlags::NOFOLLOW, Mode::empty()) {
        Err(Errno::NOENT) if create => {
            match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(rfs::openat(
                dir,
                name,
                dir_flags() | OFlags::NOFOLLOW,
                Mode::empty(),
            )?)
        }
        other => Ok(other?),
    }
}

/// The mode to give the new file: the existing file's, or `0o644`. Refuses symlinks and
/// anything that is not a regular file.
fn writable_target(dir: &OwnedFd, name: &OsStr) -> io::Result<Mode> {
    match entry_type(dir, name)? {
        None => Ok(Mode::from_raw_mode(0o644)),
        Some((FileType::RegularFile, mode)) => Ok(mode),
        Some((FileType::Symlink, _)) => {
            Err(io::Error::from_raw_os_error(Errno::LOOP.raw_os_error()))
        }
        Some((FileType::Directory, _)) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )),
    }
}

fn fill_and_rename(
    dir: &OwnedFd,
    tmp: &OsStr,
    name: &OsStr,
    mode: Mode,
    content: &[u8],
) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(dir, tmp, flags, mode)?;
    rfs::fchmod(&fd, mode)?; // the umask may have narrowed it
    let mut file = File::from(fd);
    file.write_all(content)?;
    file.sync_data()?;
    writable_target(dir, name)?; // a symlink may have appeared meanwhile
    Ok(rfs::renameat(dir, tmp, dir, name)?)
}

fn temp_name(name: &OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".codex-tmp.{}.{n}", std::process::id()));
    tmp
}

fn components(rel: &Path) -> io::Result<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path is not a plain relative path",
            )),
        })
        .collect()
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[test]
    fn open_file_refuses_a_final_symlink() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "s");
        f.symlink(&secret, "link");
        let err = open_file(f.root(), Path::new("link")).unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
    }

    #[test]
    fn open_file_refuses_a_symlinked_directory_on_the_way() {
        let f = Fixture::new();
        f.outside_file("secret", "s");
        f.symlink(f.outside(), "dir");
        assert!(open_file(f.root(), Path::new("dir/secret")).is_err());
    }

    #[test]
    fn write_atomic_creates_parents_and_replaces() {
        let f = Fixture::new();
        write_atomic(f.root(), Path::new("a/b/c.txt"), b"one").unwrap();
        write_atomic(f.root(), Path::new("a/b/c.txt"), b"two").unwrap();
        assert_eq!(f.read("a/b/c.txt"), "two");
        let names: Vec<_> = std::fs::read_dir(f.root().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn write_atomic_refuses_a_symlink_target() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "original");
        f.symlink(&secret, "link");
        let err = write_atomic(f.root(), Path::new("link"), b"evil").unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
        assert_eq!(std::fs::read_to_string(secret).unwrap(), "original");
    }

    #[test]
    fn open_file_refuses_a_hard_linked_file() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "s");
        std::fs::hard_link(&secret, f.root().join("notes.txt")).unwrap();
        let err = open_file(f.root(), Path::new("notes.txt")).unwrap_err();
        assert!(is_hard_link_refusal(&err), "{err}");
    }

    #[test]
    fn write_atomic_through_a_hard_link_leaves_the_other_name_alone() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "original");
        std::fs::hard_link(&secret, f.root().join("notes.txt")).unwrap();
        write_atomic(f.root(), Path::new("notes.txt"), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "original");
        assert_eq!(f.read("notes.txt"), "new");
    }

    #[test]
    fn remove_file_refuses_a_symlink() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "s");
        f.symlink(&secret, "link");
        assert!(remove_file(f.root(), Path::new("link")).is_err());
        assert!(secret.exists());
        f.write("a.txt", "x");
        remove_file(f.root(), Path::new("a.txt")).unwrap();
        assert!(!f.root().join("a.txt").exists());
    }

    #[test]
    fn write_atomic_refuses_a_symlinked_parent() {
        let f = Fixture::new();
        f.symlink(f.outside(), "out");
        assert!(write_atomic(f.root(), Path::new("out/x.txt"), b"evil").is_err());
        assert!(!f.outside().join("x.txt").exists());
    }
}

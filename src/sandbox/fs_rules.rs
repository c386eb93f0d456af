//! The Landlock ruleset of a sandboxed program (with the `landlock` crate, by the Landlock
//! maintainers), built and enforced in the sandbox's child just before it executes the
//! program.
//!
//! Every filesystem right the kernel knows is *handled* (so denied unless a rule grants
//! it). Rules grant:
//! - read and execute below the system directories and toolchain homes
//!   ([`SandboxPolicy::system`]); the hidden paths inside them (`/etc/shadow`, `/etc/ssh`,
//!   `~/.cargo/credentials.toml`, ...) are masked by mounts before (`enter.rs`), since
//!   Landlock cannot deny inside a granted tree;
//! - read and write on `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`,
//!   `/dev/urandom`, `/dev/tty`;
//! - read and execute below the readable workspace trees, everything below the writable
//!   ones and the call's private temporary directory. Workspace paths are opened from the
//!   workspace root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a tree that is a
//!   symbolic link (to `/etc`, say) is skipped, never followed. A writable tree that does
//!   not exist yet is created first (the policy lets the agent write there).
//!
//! On ABI 6 and later the ruleset is also *scoped*: no signals to processes outside the
//! sandbox, no connections to abstract Unix sockets created outside it.

use std::os::fd::OwnedFd;
use std::path::Path;

use landlock::{
    Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::policy::SandboxPolicy;

/// The newest ABI whose rights this code asks for; older kernels enforce what they know.
const TARGET_ABI: ABI = ABI::V9;

/// Device files every program may read and write.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// What was enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforced {
    /// Every right this code knows.
    Fully,
    /// The rights of the kernel's older ABI.
    Partially,
}

/// Builds the ruleset for `policy` (plus `temp`, writable) and enforces it on this thread
/// and everything it executes. Also sets `no_new_privs`.
pub fn restrict(policy: &SandboxPolicy, temp: Option<&Path>) -> Result<Enforced, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("landlock: {what}: {e}");
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| err("handled rights", &e))?
        .scope(Scope::from_all(TARGET_ABI))
        .map_err(|e| err("scopes", &e))?
        .create()
        .map_err(|e| err("create", &e))?;
    for dir in &policy.system {
        if let Ok(fd) = PathFd::new(dir) {
            ruleset = add(ruleset, fd, read, dir)?;
        }
    }
    for dev in DEVICES {
        if let Ok(fd) = PathFd::new(dev) {
            ruleset = add(ruleset, fd, AccessFs::from_file(TARGET_ABI), Path::new(dev))?;
        }
    }
    let root = open_beneath(None, &policy.workspace, ".")
        .map_err(|e| err(&format!("open {}", policy.workspace.display()), &e))?;
    for tree in &policy.write {
        create_beneath(&root, tree);
    }
    for tree in &policy.read {
        if let Ok(fd) = open_beneath(Some(&root), &policy.workspace, tree) {
            ruleset = add(ruleset, fd, read, &policy.workspace.join(tree))?;
        }
    }
    for tree in &policy.write {
        if let Ok(fd) = open_beneath(Some(&root), &policy.workspace, tree) {
            ruleset = add(ruleset, fd, all, &policy.workspace.join(tree))?;
        }
    }
    if let Some(temp) = temp {
        let fd = PathFd::new(temp).map_err(|e| err("temporary directory", &e))?;
        ruleset = add(ruleset, fd, all, temp)?;
    }
    let status = ruleset
        .no_new_privs(true)
        .restrict_self()
        .map_err(|e| err("restrict", &e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(Enforced::Fully),
        RulesetStatus::PartiallyEnforced => Ok(Enforced::Partially),
        RulesetStatus::NotEnforced => Err("landlock: this kernel enforced nothing".into()),
    }
}

/// Adds one path-beneath rule; a rule on a file keeps only the rights files have.
fn add(
    ruleset: RulesetCreated,
    fd: impl std::os::fd::AsFd,
    access: landlock::BitFlags<AccessFs>,
    path: &Path,
) -> Result<RulesetCreated, String> {
    let is_dir = rustix::fs::fstat(&fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        })
        .unwrap_or(false);
    let access = if is_dir {
        access
    } else {
        access & AccessFs::from_file(TARGET_ABI)
    };
    ruleset
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| format!("landlock: rule for {}: {e}", path.display()))
}

/// Opens `rel` below `root` (or `workspace` itself when `root` is `None`) without
/// following any symbolic link.
fn open_beneath(root: Option<&OwnedFd>, workspace: &Path, rel: &str) -> std::io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let fd = match root {
        Some(root) => rustix::fs::openat2(
            root,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )?,
        None => rustix::fs::open(workspace, flags | OFlags::DIRECTORY, Mode::empty())?,
    };
    Ok(fd)
}

/// Creates the missing directories of `tree` below `root`, component by component,
/// never through a symbolic link. Failures are left to the program to meet.
fn create_beneath(root: &OwnedFd, tree: &str) {
    let mut prefix = String::new();
    for part in tree.split('/').filter(|p| !p.is_empty()) {
        let parent = if prefix.is_empty() {
            ".".to_owned()
        } else {
            prefix.clone()
        };
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        let exists = rustix::fs::openat2(
            root,
            prefix.as_str(),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        );
        if exists.is_ok() {
            continue;
        }
        let Ok(dir) = rustix::fs::openat2(
            root,
            parent.as_str(),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        ) else {
            return;
        };
        if rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)).is_err() {
            return;
        }
    }
}

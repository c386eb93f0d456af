//! From an agent's effective permissions to the sandbox of the programs it runs: pure code,
//! [`SandboxPolicy::derive`].
//!
//! The policy (`codex_actors::policy::rules`) decides each tool call by glob; the kernel
//! (Landlock) grants access to whole directory trees. So each glob is **widened** to the
//! directory above its first wildcard: `src/**` is `src` (exact), `src/**/*.rs` and
//! `src/*.rs` are `src` (a program may read every file below `src`, not only `.rs` files),
//! `**` and `*.md` are the workspace root. A literal path stays itself for reading; for
//! writing it widens to its parent directory, because creating or atomically replacing a
//! file needs rights on the directory that holds it. Each widening is listed in
//! [`SandboxPolicy::widened`].
//!
//! An agent's permissions are layers (its own, then each delegating ancestor's, see
//! [`PolicyLayer`]); a path is readable (writable) in the sandbox only if every layer's
//! widened set allows it. Each layer's readable set includes what it may write (a program
//! that writes a file reads it back), and its writable set is cut to its scope. Sets of
//! directory trees intersect exactly: two trees meet in the deeper one when one contains
//! the other, and not at all otherwise (property-tested below).
//!
//! **Protected paths** are never writable: `.git` and `.codex` (at the workspace root and
//! at the root of every writable tree) and `$CODEX_HOME`. A writable tree inside one of
//! them is dropped; one that contains one lists it in [`SandboxPolicy::protected`], and
//! the sandbox mounts it read-only (see `enter.rs`: Landlock cannot take away a right
//! inside a tree it granted). A protected path that does not exist yet is not covered: a
//! program could create a new `.git` in a writable tree (documented in README).
//!
//! **Network**: programs get none, whatever URLs the agent may fetch: `web_fetch` checks
//! each URL, a program would not. `[sandbox] program_network = true` gives network to the
//! programs of agents whose every layer allows some URL.

use std::path::{Path, PathBuf};

use codex_actors::spec::PolicyLayer;
use serde::{Deserialize, Serialize};

use super::limits::Limits;

/// The directories of this machine that every sandboxed program may read and execute.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/opt", "/etc", "/proc", "/sys",
];

/// Paths inside the system directories that stay unreadable (host keys, password hashes,
/// sudo rules, TLS private keys).
pub const SYSTEM_HIDDEN: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/security/opasswd",
];

/// Names of files inside a toolchain home that stay unreadable (registry tokens).
pub const TOOLCHAIN_HIDDEN: &[&str] = &["credentials", "credentials.toml"];

/// Names that are protected wherever a writable tree starts (and at the workspace root).
pub const PROTECTED_NAMES: &[&str] = &[".git", ".codex"];

/// What the machine contributes to every derivation: where things are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The workspace root, canonical.
    pub workspace: PathBuf,
    /// `$CODEX_HOME`, if known.
    pub codex_home: Option<PathBuf>,
    /// Absolute directories that programs need to read and execute: the `PATH` entries
    /// outside the workspace and toolchain homes (`CARGO_HOME`, `RUSTUP_HOME`).
    pub toolchains: Vec<PathBuf>,
    /// `[sandbox] program_network`: programs of agents allowed some URL get network.
    pub program_network: bool,
}

/// The sandbox one `shell` call runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// The workspace root (absolute, canonical).
    pub workspace: PathBuf,
    /// Workspace-relative trees (or files) programs may read and execute (`""`: all).
    pub read: Vec<String>,
    /// Workspace-relative trees programs may write (create, change, remove, execute).
    pub write: Vec<String>,
    /// Absolute paths inside writable trees that are mounted read-only when they exist.
    pub protected: Vec<PathBuf>,
    /// Absolute trees outside the workspace that programs may read and execute.
    pub system: Vec<PathBuf>,
    /// Absolute paths inside those trees that are not readable.
    pub hidden: Vec<PathBuf>,
    /// Whether programs get the network.
    pub network: bool,
    /// How they are kept off it when they do not (chosen by what the kernel supports, see
    /// [`NetworkDenial`]).
    #[serde(default)]
    pub network_denial: NetworkDenial,
    /// Resource limits per call.
    pub limits: Limits,
    /// Globs that the sandbox had to widen, with what they became.
    pub widened: Vec<Widening>,
}

/// How a sandbox without network keeps its programs off it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkDenial {
    /// A network namespace with no interface but a down loopback. Needed where Landlock
    /// cannot scope abstract Unix sockets (ABI < 6): a new network namespace is what
    /// keeps a program from the host's abstract sockets there; and where the kernel runs
    /// x32 system calls, which a seccomp filter keyed by x86-64 numbers does not see.
    #[default]
    Namespace,
    /// seccomp refuses every socket but a Unix one (`socket(2)` of any other family
    /// fails with `EPERM`: no IPv4, IPv6, netlink, packet or vsock socket), and Landlock
    /// (ABI 6+) refuses abstract Unix sockets created outside the sandbox. As tight as an
    /// empty network namespace, without the cost of creating and tearing one down on
    /// every call.
    Seccomp,
}

/// A glob whose tree is wider than the glob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Widening {
    /// The glob as written.
    pub glob: String,
    /// The workspace-relative tree it grants (`""`: the whole workspace).
    pub tree: String,
}

impl SandboxPolicy {
    /// The sandbox of an agent whose effective policy is `layers` (its own first), on
    /// `host`, with `limits`.
    pub fn derive(layers: &[PolicyLayer], host: &Host, limits: Limits) -> Self {
        let mut widened = Vec::new();
        let mut read: Option<Vec<String>> = None;
        let mut write: Option<Vec<String>> = None;
        for layer in layers {
            let w = intersect(
                &trees(&layer.permissions.write, Use::Write, &mut widened),
                &[clean(&layer.scope)],
            );
            let mut r = trees(&layer.permissions.read, Use::Read, &mut widened);
            r.extend(w.iter().cloned());
            read = Some(match read {
                None => minimal(r),
                Some(prev) => intersect(&prev, &r),
            });
            write = Some(match write {
                None => minimal(w),
                Some(prev) => intersect(&prev, &w),
            });
        }
        let home = host
            .codex_home
            .as_deref()
            .and_then(|h| h.strip_prefix(&host.workspace).ok())
            .map(|rel| rel.to_string_lossy().into_owned());
        let write: Vec<String> = write
            .unwrap_or_default()
            .into_iter()
            .filter(|w| !is_protected(w, home.as_deref()))
            .collect();
        widened.sort_by(|a, b| a.glob.cmp(&b.glob));
        widened.dedup();
        Self {
            protected: protected_in(&write, &host.workspace, host.codex_home.as_deref()),
            workspace: host.workspace.clone(),
            read: read.unwrap_or_default(),
            write,
            system: system_dirs(&host.toolchains),
            hidden: hidden(&host.toolchains),
            network: host.program_network
                && !layers.is_empty()
                && layers.iter().all(|l| !l.permissions.network.is_empty()),
            network_denial: NetworkDenial::default(),
            limits,
            widened,
        }
    }

    /// Whether a program in this sandbox may read `rel` (workspace-relative).
    pub fn may_read(&self, rel: &str) -> bool {
        self.read.iter().any(|t| within(rel, t))
    }

    /// Whether a program in this sandbox may write `rel` (workspace-relative): inside a
    /// writable tree and not inside a protected path.
    pub fn may_write(&self, rel: &str) -> bool {
        let abs = self.workspace.join(rel);
        self.write.iter().any(|t| within(rel, t))
            && !self.protected.iter().any(|p| abs.starts_with(p))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Write,
}

/// The trees `globs` grant, widened, with each widening noted.
fn trees(globs: &[String], usage: Use, widened: &mut Vec<Widening>) -> Vec<String> {
    globs
        .iter()
        .map(|glob| {
            let (tree, exact) = tree_of(glob, usage);
            if !exact {
                widened.push(Widening {
                    glob: glob.clone(),
                    tree: tree.clone(),
                });
            }
            tree
        })
        .collect()
}

/// The tree a glob grants, and whether that is exactly what the glob allows.
fn tree_of(glob: &str, usage: Use) -> (String, bool) {
    let normal = normalize(glob);
    let parts: Vec<&str> = normal.split('/').collect();
    let first_wild = parts.iter().position(|p| p.contains(['*', '?', '[', '{']));
    match first_wild {
        Some(i) => {
            let tree = parts[..i].join("/");
            let exact = i == parts.len() - 1 && parts[i] == "**";
            (tree, exact)
        }
        None if usage == Use::Write => {
            let tree = parts[..parts.len() - 1].join("/");
            (tree, false)
        }
        None => (normal, true),
    }
}

/// `./src/**` → `src/**`; `src/` → `src/**`; `.` or `` → `**` (as the policy reads globs).
fn normalize(glob: &str) -> String {
    let mut g = glob.trim();
    while let Some(rest) = g.strip_prefix("./") {
        g = rest;
    }
    if g.is_empty() || g == "." {
        return "**".into();
    }
    match g.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => g.to_owned(),
    }
}

fn clean(rel: &str) -> String {
    rel.trim_matches('/').trim_start_matches("./").to_owned()
}

/// Whether `path` is `tree` or below it (by components; `""` is the whole workspace).
pub fn within(path: &str, tree: &str) -> bool {
    tree.is_empty()
        || path == tree
        || path
            .strip_prefix(tree)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The paths in both unions of trees: where one tree contains the other, the deeper one.
fn intersect(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if within(x, y) {
                out.push(x.clone());
            } else if within(y, x) {
                out.push(y.clone());
            }
        }
    }
    minimal(out)
}

/// Sorted, without duplicates and without trees inside another tree of the list.
fn minimal(mut trees: Vec<String>) -> Vec<String> {
    trees.sort();
    trees.dedup();
    let all = trees.clone();
    trees.retain(|t| !all.iter().any(|o| o != t && within(t, o)));
    trees
}

/// Whether a workspace-relative tree lies inside a protected path.
fn is_protected(tree: &str, codex_home: Option<&str>) -> bool {
    tree.split('/').any(|part| {
        PROTECTED_NAMES
            .iter()
            .any(|name| part.eq_ignore_ascii_case(name))
    }) || codex_home.is_some_and(|h| within(tree, h))
}

/// The protected paths inside the writable trees, absolute.
fn protected_in(write: &[String], workspace: &Path, codex_home: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for tree in write {
        let root = workspace.join(tree);
        for name in PROTECTED_NAMES {
            out.push(root.join(name));
        }
        if let Some(home) = codex_home.filter(|h| h.starts_with(&root)) {
            out.push(home.to_owned());
        }
    }
    if !write.is_empty() {
        for name in PROTECTED_NAMES {
            out.push(workspace.join(name));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn hidden(toolchains: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = SYSTEM_HIDDEN.iter().map(PathBuf::from).collect();
    for dir in toolchains {
        out.extend(TOOLCHAIN_HIDDEN.iter().map(|name| dir.join(name)));
    }
    out
}

/// The system directories and `toolchains`, without those inside another (one Landlock
/// rule each).
fn system_dirs(toolchains: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = SYSTEM_DIRS.iter().map(PathBuf::from).collect();
    dirs.extend(toolchains.iter().cloned());
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use codex_actors::spec::Permissions;
    use proptest::prelude::*;

    fn host() -> Host {
        Host {
            workspace: PathBuf::from("/ws"),
            codex_home: Some(PathBuf::from("/home/u/.codex")),
            toolchains: vec![PathBuf::from("/home/u/.cargo/bin")],
            program_network: false,
        }
    }

    fn layer(read: &[&str], write: &[&str], scope: &str) -> PolicyLayer {
        PolicyLayer {
            permissions: Permissions {
                read: read.iter().map(|s| s.to_string()).collect(),
                write: write.iter().map(|s| s.to_string()).collect(),
                ..Permissions::default()
            },
            scope: scope.into(),
        }
    }

    fn derive(layers: &[PolicyLayer]) -> SandboxPolicy {
        SandboxPolicy::derive(layers, &host(), Limits::default())
    }

    #[test]
    fn a_glob_grants_the_directory_above_its_first_wildcard() {
        assert_eq!(tree_of("src/**", Use::Read), ("src".into(), true));
        assert_eq!(tree_of("src/", Use::Read), ("src".into(), true));
        assert_eq!(tree_of("**", Use::Read), ("".into(), true));
        assert_eq!(tree_of("src/**/*.rs", Use::Read), ("src".into(), false));
        assert_eq!(tree_of("src/*.rs", Use::Read), ("src".into(), false));
        assert_eq!(tree_of("*.md", Use::Read), ("".into(), false));
        assert_eq!(tree_of("a/b?/c", Use::Read), ("a".into(), false));
    }

    #[test]
    fn a_literal_path_is_itself_for_reading_and_its_directory_for_writing() {
        assert_eq!(
            tree_of("src/lib.rs", Use::Read),
            ("src/lib.rs".into(), true)
        );
        assert_eq!(
            tree_of("artifacts/review.md", Use::Write),
            ("artifacts".into(), false)
        );
    }

    #[test]
    fn widenings_are_listed() {
        let p = derive(&[layer(&["src/**/*.rs", "tests/**"], &[], "")]);
        assert_eq!(
            p.widened,
            [Widening {
                glob: "src/**/*.rs".into(),
                tree: "src".into()
            }]
        );
        assert_eq!(p.read, ["src", "tests"]);
    }

    #[test]
    fn writes_are_cut_to_the_scope_and_readable() {
        let p = derive(&[layer(&["src/**"], &["**"], "tests")]);
        assert_eq!(p.write, ["tests"]);
        assert_eq!(p.read, ["src", "tests"]);
    }

    #[test]
    fn a_child_gets_only_what_its_parent_allows_too() {
        let child = layer(&["**"], &["**"], "");
        let parent = layer(&["src/**", "docs/**"], &["src/gen/**"], "");
        let p = derive(&[child, parent]);
        assert_eq!(p.read, ["docs", "src"]);
        assert_eq!(p.write, ["src/gen"]);
    }

    #[test]
    fn a_read_only_agent_writes_nothing() {
        let p = derive(&[layer(&["**"], &[], "")]);
        assert!(p.write.is_empty());
        assert!(p.protected.is_empty());
        assert!(p.may_read("anything/at/all"));
        assert!(!p.may_write("x"));
    }

    #[test]
    fn git_and_codex_stay_read_only_inside_a_writable_workspace() {
        let p = derive(&[layer(&["**"], &["**"], "")]);
        assert_eq!(p.write, [""]);
        assert!(p.protected.contains(&PathBuf::from("/ws/.git")));
        assert!(p.protected.contains(&PathBuf::from("/ws/.codex")));
        assert!(!p.may_write(".git/config"));
        assert!(!p.may_write(".codex/agents/x.yaml"));
        assert!(p.may_write("src/main.rs"));
    }

    #[test]
    fn a_writable_tree_inside_a_protected_path_is_dropped() {
        let p = derive(&[layer(
            &[],
            &[".git/**", ".GIT/hooks/", ".codex/runs/", "out/"],
            "",
        )]);
        assert_eq!(p.write, ["out"]);
    }

    #[test]
    fn codex_home_inside_the_workspace_is_protected() {
        let mut h = host();
        h.codex_home = Some(PathBuf::from("/ws/home"));
        let p = SandboxPolicy::derive(&[layer(&[], &["**"], "")], &h, Limits::default());
        assert!(p.protected.contains(&PathBuf::from("/ws/home")));
        assert!(!p.may_write("home/codex-actors.toml"));
        let p = SandboxPolicy::derive(&[layer(&[], &["home/"], "")], &h, Limits::default());
        assert!(p.write.is_empty());
    }

    #[test]
    fn programs_get_no_network_unless_configured_and_every_layer_allows_some_url() {
        let mut l = layer(&["**"], &[], "");
        l.permissions.network = vec!["https://docs.rs/*".into()];
        assert!(!derive(std::slice::from_ref(&l)).network);
        let mut h = host();
        h.program_network = true;
        let allowed = SandboxPolicy::derive(std::slice::from_ref(&l), &h, Limits::default());
        assert!(allowed.network);
        let parent = layer(&["**"], &[], "");
        let denied = SandboxPolicy::derive(&[l, parent], &h, Limits::default());
        assert!(!denied.network);
    }

    #[test]
    fn system_and_toolchain_dirs_are_readable() {
        let p = derive(&[]);
        assert!(p.system.contains(&PathBuf::from("/usr")));
        assert!(p.system.contains(&PathBuf::from("/home/u/.cargo/bin")));
        assert!(p.hidden.contains(&PathBuf::from("/etc/shadow")));
        assert!(p
            .hidden
            .contains(&PathBuf::from("/home/u/.cargo/bin/credentials.toml")));
        assert!(p.read.is_empty() && p.write.is_empty());
    }

    fn tree_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..3)
            .prop_map(|parts| parts.join("/"))
    }

    fn in_any(path: &str, trees: &[String]) -> bool {
        trees.iter().any(|t| within(path, t))
    }

    proptest! {
        #[test]
        fn intersection_holds_exactly_the_paths_in_both(
            a in prop::collection::vec(tree_strategy(), 0..4),
            b in prop::collection::vec(tree_strategy(), 0..4),
            path in prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4),
        ) {
            let path = path.join("/");
            let both = intersect(&a, &b);
            prop_assert_eq!(in_any(&path, &both), in_any(&path, &a) && in_any(&path, &b));
        }

        #[test]
        fn a_sandbox_never_allows_a_write_some_layer_forbids(
            writes in prop::collection::vec(
                prop::collection::vec(tree_strategy(), 0..3), 1..4),
            scopes in prop::collection::vec(tree_strategy(), 1..4),
            path in prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4),
        ) {
            let path = path.join("/");
            let layers: Vec<PolicyLayer> = writes
                .iter()
                .zip(scopes.iter().cycle())
                .map(|(w, s)| {
                    let globs: Vec<String> = w
                        .iter()
                        .map(|t| if t.is_empty() { "**".into() } else { format!("{t}/**") })
                        .collect();
                    let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
                    layer(&[], &globs, s)
                })
                .collect();
            let p = derive(&layers);
            let rules_allow = layers.iter().all(|l| {
                let rules = codex_actors::policy::PolicyRules::compile(&l.permissions, &l.scope)
                    .unwrap();
                rules.decide(&codex_actors::tool::Access::Write(path.clone())).allowed
            });
            // Each glob here is an exact `dir/**`, so the sandbox allows exactly what every
            // layer's rules allow.
            prop_assert_eq!(p.may_write(&path), rules_allow);
        }
    }
}

//! Resolving model-supplied paths against the workspace: the safety core of the file tools.
//!
//! A path from the model is joined to the workspace root (absolute paths are taken as they
//! are), normalised lexically (`.` dropped, `..` pops a component), and then its symlinks are
//! followed: the deepest ancestor that exists is canonicalized and the not-yet-existing rest is
//! appended. The result is either a workspace-relative path with `/` separators (`""` for the
//! root) or [`Resolved::Outside`] with what the path really leads to.
//!
//! Most paths contain no symlink at all. For those, one `openat2(RESOLVE_NO_SYMLINKS)` of the
//! lexical path (an `O_PATH` descriptor, closed at once) proves that every component exists
//! and none is a symlink, so the lexical path is already the physical one; only when that
//! open fails (a symlink on the way, a missing file, an old kernel) is the path resolved
//! component by component as above. [`resolve_in`] applies the same proof to the workspace
//! root itself, which then needs no `realpath` of its own. The answer is the same either
//! way; the fast path costs one system call instead of a `readlink` per component.
//!
//! Trade-offs, stated plainly:
//! - `..` is applied lexically before symlinks are followed (like `cd -L`), so `link/..` is
//!   the directory holding `link`, not the parent of its target. This is safe because the
//!   tools only ever touch the *resolved* path, never the raw one.
//! - A dangling symlink is followed by reading its target, so a link to a file that does not
//!   exist yet outside the workspace is still reported as outside.
//! - Resolution is a snapshot. Between planning and running a call, the filesystem can
//!   change; [`super::approved`] re-checks the resolution and [`super::beneath`] opens files
//!   without following symlinks, so a late swap is refused rather than followed.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use codex_actors::tool::{Access, ToolContext, ToolError};

/// How many dangling symlinks one resolution may follow before giving up (as `ELOOP`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Where a model-supplied path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Inside the workspace: relative, `/`-separated, `""` for the root itself.
    Inside(String),
    /// Outside the workspace: the absolute path it resolved to.
    Outside(String),
}

impl Resolved {
    /// The access a read of this path needs.
    pub fn read_access(&self) -> Access {
        match self {
            Self::Inside(p) => Access::Read(p.clone()),
            Self::Outside(p) => Access::Outside(p.clone()),
        }
    }

    /// The access a search of everything below this path needs.
    pub fn tree_access(&self) -> Access {
        match self {
            Self::Inside(p) => Access::ReadTree(p.clone()),
            Self::Outside(p) => Access::Outside(p.clone()),
        }
    }

    /// The access a write to this path needs.
    pub fn write_access(&self) -> Access {
        match self {
            Self::Inside(p) => Access::Write(p.clone()),
            Self::Outside(p) => Access::Outside(p.clone()),
        }
    }

    /// The workspace-relative path, or an error naming `raw` if it leads outside.
    pub fn into_inside(self, raw: &str) -> Result<String, ToolError> {
        match self {
            Self::Inside(p) => Ok(p),
            Self::Outside(p) => Err(ToolError::new(format!(
                "`{raw}` resolves to `{p}`, outside the workspace; use a path inside it"
            ))),
        }
    }
}

/// The workspace root of `ctx`, canonicalized (symlinks in the root itself followed once).
pub fn workspace_root(ctx: &ToolContext) -> Result<PathBuf, ToolError> {
    canonical_root(&ctx.workspace)
}

fn canonical_root(workspace: &Path) -> Result<PathBuf, ToolError> {
    workspace.canonicalize().map_err(|e| {
        ToolError::new(format!(
            "the workspace `{}` is not accessible: {e}",
            workspace.display()
        ))
    })
}

/// The path a tool defaults to when the model gives none: the agent's scope (`.` for root).
pub fn default_to_scope<'a>(raw: Option<&'a str>, scope: &'a str) -> &'a str {
    match raw {
        Some(p) => p,
        None if scope.trim_matches('/').is_empty() => ".",
        None => scope,
    }
}

/// Resolves `raw` (relative to `root`, or absolute) as described in the module docs.
/// `root` must be canonical (see [`workspace_root`]).
pub fn resolve(root: &Path, raw: &str) -> Result<Resolved, ToolError> {
    check_raw(raw)?;
    let lexical = normalize(&root.join(raw));
    if lexical.is_absolute() && free_of_symlinks(&lexical) {
        return classify(root, &lexical);
    }
    walk(root, lexical, raw)
}

/// The component-by-component resolution of `lexical` (`raw` normalised against `root`).
fn walk(root: &Path, lexical: PathBuf, raw: &str) -> Result<Resolved, ToolError> {
    let physical = resolve_physical(lexical, Vec::new(), 0)
        .map_err(|e| ToolError::new(format!("cannot resolve `{raw}`: {e}")))?;
    classify(root, &physical)
}

/// The canonical root of `workspace` and where `raw` leads in it: [`workspace_root`] and
/// [`resolve`] in one, with one system call for both when neither the root nor the path
/// holds a symlink (the usual case: `workspace` was canonicalized at start-up).
pub fn resolve_in(workspace: &Path, raw: &str) -> Result<(PathBuf, Resolved), ToolError> {
    check_raw(raw)?;
    if let Some(root) = clean_absolute(workspace) {
        let lexical = normalize(&root.join(raw));
        // No component of `lexical`, the root's included, is a symlink, and none is `.` or
        // `..`: both are their own canonical paths.
        if lexical.starts_with(&root) && free_of_symlinks(&lexical) {
            let resolved = classify(&root, &lexical)?;
            return Ok((root, resolved));
        }
    }
    let root = canonical_root(workspace)?;
    let resolved = resolve(&root, raw)?;
    Ok((root, resolved))
}

/// `path` with its redundant separators dropped, if it is absolute and has no `.` or `..`
/// component (lexically clean; not yet checked for symlinks).
fn clean_absolute(path: &Path) -> Option<PathBuf> {
    let clean = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    clean.then(|| path.components().collect())
}

/// Whether `path` (absolute, lexically normalised) exists and none of its components is a
/// symlink: then it is its own canonical path. One `openat2` with `RESOLVE_NO_SYMLINKS`
/// (which refuses a symlink anywhere, the last component included, with `ELOOP`); any
/// failure, `ENOSYS` on kernels before 5.6 included, means "not proven" and the caller
/// takes the slow path.
fn free_of_symlinks(path: &Path) -> bool {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    openat2(
        CWD,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .is_ok()
}

fn check_raw(raw: &str) -> Result<(), ToolError> {
    if raw.trim().is_empty() {
        return Err(ToolError::new(
            "the path is empty; give a path relative to the workspace root (`.` for the root)",
        ));
    }
    if raw.contains('\0') {
        return Err(ToolError::new("the path contains a NUL byte; remove it"));
    }
    Ok(())
}

/// Lexical normalisation of an absolute path: drops `.`, applies `..` by popping a
/// component (never above `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Follows symlinks in `path` (already normalised). `rest` holds components below `path`
/// that do not exist, deepest first.
fn resolve_physical(
    mut path: PathBuf,
    mut rest: Vec<OsString>,
    hops: usize,
) -> io::Result<PathBuf> {
    loop {
        match path.canonicalize() {
            Ok(base) => return Ok(append(base, &rest)),
            Err(_) if is_symlink(&path) => return follow_dangling(&path, rest, hops),
            Err(e) if !is_missing(&e) => return Err(e),
            Err(_) => {}
        }
        let Some(name) = path.file_name() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no existing ancestor",
            ));
        };
        rest.push(name.to_owned());
        path.pop();
    }
}

/// Resolves through a symlink whose target does not exist (yet).
fn follow_dangling(link: &Path, rest: Vec<OsString>, hops: usize) -> io::Result<PathBuf> {
    if hops >= MAX_SYMLINK_HOPS {
        return Err(io::Error::other("too many levels of symbolic links"));
    }
    let target = std::fs::read_link(link)?;
    let parent = link.parent().unwrap_or(Path::new("/")).canonicalize()?;
    resolve_physical(normalize(&parent.join(target)), rest, hops + 1)
}

fn append(mut base: PathBuf, rest: &[OsString]) -> PathBuf {
    for name in rest.iter().rev() {
        base.push(name);
    }
    base
}

fn is_symlink(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

fn classify(root: &Path, path: &Path) -> Result<Resolved, ToolError> {
    match path.strip_prefix(root) {
        Ok(rel) => to_slash(rel).map(Resolved::Inside),
        Err(_) => Ok(Resolved::Outside(path.display().to_string())),
    }
}

/// A relative path as a `/`-separated string; refuses names that are not UTF-8.
fn to_slash(rel: &Path) -> Result<String, ToolError> {
    let mut parts = Vec::new();
    for component in rel.components() {
        let name = component.as_os_str().to_str().ok_or_else(|| {
            ToolError::new(format!(
                "`{}` contains a name that is not valid UTF-8; tools cannot address it",
                rel.display()
            ))
        })?;
        parts.push(name);
    }
    Ok(parts.join("/"))
}

/// Whether a workspace-relative path is in (or is) a `.git` directory, at any depth, in
/// any case (the policy's own rule: [`codex_actors::policy::protected::never_writable`]).
pub fn is_git_internal(rel: &str) -> bool {
    rel.split('/').any(|c| c.eq_ignore_ascii_case(".git"))
}

/// Refuses, for `tool`, a write target that is the workspace root itself. Checked when a
/// call is planned; protected paths (`.git`, `.codex`, ...) are the policy's to deny, so
/// the denial is a policy decision in the audit log.
pub fn check_not_root(tool: &str, rel: &str) -> Result<(), ToolError> {
    if rel.is_empty() {
        return Err(ToolError::new(format!(
            "{tool}: a path is the workspace root; give file paths"
        )));
    }
    Ok(())
}

/// [`check_not_root`], and, as a second line behind the policy (which denies them first),
/// a path no agent may ever write; also a `config` beside a `HEAD` (a git repository's
/// configuration, which runs `core.fsmonitor`), even for a definition that opted in to
/// writing files named `config`: the pure policy cannot see the `HEAD`. Checked just
/// before writing (`root` is the canonical workspace root).
pub fn check_write_target(tool: &str, root: &Path, rel: &str) -> Result<(), ToolError> {
    check_not_root(tool, rel)?;
    if let Some(rule) = codex_actors::policy::protected::never_writable(rel) {
        return Err(ToolError::new(format!("{tool}: `{rel}`: {rule}")));
    }
    let path = root.join(rel);
    let is_config = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("config"));
    let beside_head = path.parent().is_some_and(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().eq_ignore_ascii_case("HEAD"))
        })
    });
    if is_config && beside_head {
        return Err(ToolError::new(format!(
            "{tool}: `{rel}` is beside a `HEAD`: a git repository's configuration, which no agent may write"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    fn inside(p: &str) -> Resolved {
        Resolved::Inside(p.into())
    }

    #[test]
    fn traversal_above_the_root_is_outside() {
        let f = Fixture::new();
        let r = resolve(f.root(), "../x").unwrap();
        let expected = f.root().parent().unwrap().join("x");
        assert_eq!(r, Resolved::Outside(expected.display().to_string()));
    }

    #[test]
    fn absolute_path_outside_is_outside() {
        let f = Fixture::new();
        assert!(matches!(
            resolve(f.root(), "/etc/passwd").unwrap(),
            Resolved::Outside(p) if p == "/etc/passwd"
        ));
    }

    #[test]
    fn absolute_path_inside_becomes_relative() {
        let f = Fixture::new();
        f.write("src/a.rs", "x");
        let abs = f.root().join("src/a.rs");
        assert_eq!(
            resolve(f.root(), abs.to_str().unwrap()).unwrap(),
            inside("src/a.rs")
        );
    }

    #[test]
    fn root_resolves_to_empty_string() {
        let f = Fixture::new();
        assert_eq!(resolve(f.root(), ".").unwrap(), inside(""));
        assert_eq!(resolve(f.root(), "src/..").unwrap(), inside(""));
    }

    #[test]
    fn file_symlink_escaping_the_workspace_is_outside() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "s");
        f.symlink(&secret, "link");
        assert_eq!(
            resolve(f.root(), "link").unwrap(),
            Resolved::Outside(secret.display().to_string())
        );
    }

    #[test]
    fn dir_symlink_escaping_the_workspace_is_outside() {
        let f = Fixture::new();
        f.symlink(f.outside(), "out");
        let r = resolve(f.root(), "out/new/file.txt").unwrap();
        let expected = f.outside().join("new/file.txt");
        assert_eq!(r, Resolved::Outside(expected.display().to_string()));
    }

    #[test]
    fn dangling_symlink_escaping_the_workspace_is_outside() {
        let f = Fixture::new();
        let target = f.outside().join("not-yet");
        f.symlink(&target, "dangling");
        assert_eq!(
            resolve(f.root(), "dangling").unwrap(),
            Resolved::Outside(target.display().to_string())
        );
    }

    #[test]
    fn symlink_inside_resolves_to_its_target() {
        let f = Fixture::new();
        f.write("real/file.txt", "x");
        f.symlink(&f.root().join("real"), "alias");
        assert_eq!(
            resolve(f.root(), "alias/file.txt").unwrap(),
            inside("real/file.txt")
        );
    }

    #[test]
    fn nonexistent_nested_path_resolves_under_existing_parent() {
        let f = Fixture::new();
        f.write("src/lib.rs", "x");
        assert_eq!(
            resolve(f.root(), "src/new/deeper/mod.rs").unwrap(),
            inside("src/new/deeper/mod.rs")
        );
    }

    #[test]
    fn dotdot_through_nonexistent_component_is_lexical() {
        let f = Fixture::new();
        f.write("src/a.rs", "x");
        assert_eq!(
            resolve(f.root(), "nope/../src/a.rs").unwrap(),
            inside("src/a.rs")
        );
        assert!(matches!(
            resolve(f.root(), "nope/../../x").unwrap(),
            Resolved::Outside(_)
        ));
    }

    #[test]
    fn dotdot_then_symlink_is_still_followed() {
        let f = Fixture::new();
        f.symlink(f.outside(), "out");
        assert!(matches!(
            resolve(f.root(), "nope/../out/x").unwrap(),
            Resolved::Outside(_)
        ));
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let f = Fixture::new();
        f.symlink(&f.root().join("b"), "a");
        f.symlink(&f.root().join("a"), "b");
        let err = resolve(f.root(), "a/x").unwrap_err();
        assert!(err.0.contains("cannot resolve `a/x`"), "{err}");
    }

    #[test]
    fn empty_path_is_an_error() {
        let f = Fixture::new();
        assert!(resolve(f.root(), "").unwrap_err().0.contains("empty"));
        assert!(resolve(f.root(), "  ").is_err());
    }

    #[test]
    fn nul_byte_is_an_error() {
        let f = Fixture::new();
        assert!(resolve(f.root(), "a\0b").unwrap_err().0.contains("NUL"));
    }

    /// What the slow path alone (a `realpath` per ancestor) says `raw` leads to.
    fn walked(root: &Path, raw: &str) -> Result<Resolved, ToolError> {
        walk(root, normalize(&root.join(raw)), raw)
    }

    /// A workspace with symlinks inside, out, dangling and in a loop.
    fn tangled() -> Fixture {
        let f = Fixture::new();
        f.write("src/a.rs", "x");
        f.write("real/file.txt", "x");
        f.symlink(&f.root().join("real"), "alias");
        f.symlink(&f.outside_file("secret", "s"), "link");
        f.symlink(f.outside(), "out");
        f.symlink(&f.outside().join("not-yet"), "dangling");
        f.symlink(&f.root().join("b"), "a");
        f.symlink(&f.root().join("a"), "b");
        f
    }

    const RAW: &[&str] = &[
        ".",
        "src",
        "src/a.rs",
        "src/",
        "./src//a.rs",
        "src/new/x.rs",
        "alias/file.txt",
        "alias/../src/a.rs",
        "link",
        "out/x",
        "out/../src/a.rs",
        "dangling",
        "a/x",
        "../x",
        "nope/../src/a.rs",
        "nope/../../x",
        "/etc/passwd",
        "/",
    ];

    /// `resolve_in` as a pair of results comparable with `assert_eq!`.
    fn resolved_in(workspace: &Path, raw: &str) -> (Option<PathBuf>, Result<Resolved, String>) {
        match resolve_in(workspace, raw) {
            Ok((root, resolved)) => (Some(root), Ok(resolved)),
            Err(e) => (None, Err(e.0)),
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_component_walk() {
        let f = tangled();
        for raw in RAW {
            let walked = walked(f.root(), raw).map_err(|e| e.0);
            assert_eq!(
                resolve(f.root(), raw).map_err(|e| e.0),
                walked,
                "resolve {raw}"
            );
            let (root, resolved) = resolved_in(f.root(), raw);
            assert_eq!(resolved, walked, "resolve_in {raw}");
            assert!(root.is_none_or(|r| r == f.root()), "root for {raw}");
        }
    }

    #[test]
    fn only_an_existing_path_without_symlinks_takes_the_fast_path() {
        let f = tangled();
        let fast = |rel: &str| free_of_symlinks(&f.root().join(rel));
        assert!(fast("src/a.rs") && fast("src") && fast("real/file.txt"));
        for slow in [
            "link",
            "alias/file.txt",
            "out/x",
            "dangling",
            "a/x",
            "src/new/x.rs",
        ] {
            assert!(!fast(slow), "{slow}");
        }
    }

    #[test]
    fn a_workspace_named_through_a_symlink_or_dotdot_resolves_against_its_real_root() {
        let f = tangled();
        let via_link = f.outside().join("ws-link");
        std::os::unix::fs::symlink(f.root(), &via_link).unwrap();
        for workspace in [
            via_link,
            f.root().join("src/.."),
            f.root().join("alias/../"),
        ] {
            for raw in RAW {
                let (root, resolved) = resolved_in(&workspace, raw);
                let walked = walked(f.root(), raw).map_err(|e| e.0);
                let shown = workspace.display();
                assert_eq!(resolved, walked, "{shown} + {raw}");
                assert!(root.is_none_or(|r| r == f.root()), "{shown} + {raw}");
            }
        }
    }

    #[test]
    fn git_internal_paths_are_recognised() {
        assert!(is_git_internal(".git/config"));
        assert!(is_git_internal("sub/.git/HEAD"));
        assert!(!is_git_internal(".github/workflows/ci.yml"));
        assert!(!is_git_internal("x.git"));
    }

    #[test]
    fn default_path_is_the_scope() {
        assert_eq!(default_to_scope(None, ""), ".");
        assert_eq!(default_to_scope(None, "src/api"), "src/api");
        assert_eq!(default_to_scope(Some("x"), "src"), "x");
    }
}

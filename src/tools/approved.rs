//! Planning a path, and checking at invoke time that it still leads where the policy said.
//!
//! [`plan`] resolves a model-supplied path (see [`super::paths`]). The engine has the policy
//! judge the resulting access and hands the approved plan back to `invoke`. Between the two,
//! the filesystem may change: a symlink swapped in would make a fresh resolution lead to a
//! file the policy never saw (`.env`, say, inside the workspace). [`recheck`] therefore
//! resolves again and refuses unless the answer is one of the approved accesses. What
//! remains of the race (a swap after the recheck) is closed by [`super::beneath`], which
//! opens every component without following symlinks.
//!
//! No state is kept between `plan` and `invoke`: the approved plan travels with the call.

use std::path::PathBuf;

use codex_actors::tool::{Access, ToolContext, ToolError};

use super::paths::{self, Resolved};

/// A path checked at invoke time: the canonical workspace root and the relative path.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The canonical workspace root.
    pub root: PathBuf,
    /// The workspace-relative path (`""` for the root), as approved.
    pub rel: String,
}

/// Resolves `raw` for a plan.
pub fn plan(ctx: &ToolContext, raw: &str) -> Result<Resolved, ToolError> {
    Ok(paths::resolve_in(&ctx.workspace, raw)?.1)
}

/// The access a search of `raw` needs: a tree read for a directory (the search reads
/// everything below it), a plain read for a file.
pub fn plan_search(ctx: &ToolContext, raw: &str) -> Result<Access, ToolError> {
    let (root, resolved) = paths::resolve_in(&ctx.workspace, raw)?;
    Ok(match &resolved {
        Resolved::Inside(rel) if root.join(rel).is_dir() => resolved.tree_access(),
        _ => resolved.read_access(),
    })
}

/// Resolves `raw` again; refuses unless it leads inside the workspace, to a path `approved`
/// allows (as a read, a tree read or a write).
pub fn recheck(ctx: &ToolContext, raw: &str, approved: &[Access]) -> Result<Checked, ToolError> {
    let (root, now) = paths::resolve_in(&ctx.workspace, raw)?;
    let matches =
        |a: &Access| *a == now.read_access() || *a == now.tree_access() || *a == now.write_access();
    if !approved.iter().any(matches) {
        return Err(ToolError::new(format!(
            "`{raw}` now resolves differently than when it was approved (a symbolic link \
             changed); refused. Check the path with list_dir and call again"
        )));
    }
    let rel = now.into_inside(raw)?;
    Ok(Checked { root, rel })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    fn approve(f: &Fixture, raw: &str) -> Vec<Access> {
        vec![plan(&f.ctx, raw).unwrap().read_access()]
    }

    #[test]
    fn unchanged_resolution_is_confirmed() {
        let f = Fixture::new();
        f.write("a.txt", "x");
        let approved = approve(&f, "a.txt");
        assert_eq!(recheck(&f.ctx, "a.txt", &approved).unwrap().rel, "a.txt");
    }

    #[test]
    fn invoke_with_an_empty_plan_is_refused() {
        let f = Fixture::new();
        f.write("a.txt", "x");
        assert!(recheck(&f.ctx, "a.txt", &[]).is_err());
    }

    #[test]
    fn symlink_swapped_after_plan_is_refused() {
        let f = Fixture::new();
        f.write("notes.txt", "n");
        f.write(".env", "secret");
        let approved = approve(&f, "notes.txt");
        std::fs::remove_file(f.root().join("notes.txt")).unwrap();
        f.symlink(&f.root().join(".env"), "notes.txt");
        let err = recheck(&f.ctx, "notes.txt", &approved).unwrap_err();
        assert!(err.0.contains("resolves differently"), "{err}");
    }

    #[test]
    fn an_approved_outside_access_is_still_refused() {
        let f = Fixture::new();
        let secret = f.outside_file("secret", "s");
        f.symlink(&secret, "link");
        let approved = approve(&f, "link");
        assert!(matches!(&approved[..], [Access::Outside(_)]));
        assert!(recheck(&f.ctx, "link", &approved).is_err());
    }
}

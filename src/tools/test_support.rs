//! Test fixtures: a real workspace directory, a real directory outside it, real symlinks.

use std::path::{Path, PathBuf};

use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use serde_json::Value;
use tempfile::TempDir;

/// A temporary workspace plus a sibling directory that is outside it.
pub struct Fixture {
    _dirs: (TempDir, TempDir),
    root: PathBuf,
    outside: PathBuf,
    /// The context tools are called with (agent `a`, scope `""`).
    pub ctx: ToolContext,
}

impl Fixture {
    /// A fresh empty workspace.
    pub fn new() -> Self {
        let ws = TempDir::new().unwrap();
        let out = TempDir::new().unwrap();
        let root = ws.path().canonicalize().unwrap();
        let outside = out.path().canonicalize().unwrap();
        let ctx = ToolContext {
            agent: "a".into(),
            workspace: root.clone(),
            scope: String::new(),
            delegator: None,
            policy: Vec::new(),
        };
        Self {
            _dirs: (ws, out),
            root,
            outside,
            ctx,
        }
    }

    /// The canonical workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical directory outside the workspace.
    pub fn outside(&self) -> &Path {
        &self.outside
    }

    /// Writes `content` to workspace-relative `rel`, creating parents.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Reads workspace-relative `rel`.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// Writes a file outside the workspace and returns its path.
    pub fn outside_file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.outside.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Creates a symlink at workspace-relative `link` pointing to `target`.
    pub fn symlink(&self, target: &Path, link: &str) {
        let path = self.root.join(link);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    /// Plans `args` with `tool`.
    pub fn plan(&self, tool: &dyn Tool, args: Value) -> Result<Vec<Access>, ToolError> {
        tool.plan(&args, &self.ctx)
    }

    /// Plans, then invokes, like the engine does (without the policy).
    pub async fn run(&self, tool: &dyn Tool, args: Value) -> Result<ToolOutput, ToolError> {
        let plan = tool.plan(&args, &self.ctx)?;
        tool.invoke(args, &plan, &self.ctx).await
    }
}

//! Running one program for `shell`: finding it on `PATH`, starting it in an approved
//! directory with a scrubbed environment, capping its output, and killing it on timeout.
//!
//! - The program is a bare name (no `/`), looked up in the absolute directories of `PATH`
//!   that are outside the workspace: a relative entry (`.`) or one inside the workspace
//!   would let an agent that may write plant its own `cargo`.
//! - argv goes to `execve` as it is: no shell, so `;`, `$(...)`, backticks and `&&` are
//!   plain characters of an argument.
//! - The working directory is entered through a descriptor opened by
//!   [`super::beneath::open_dir`] (on Linux, `chdir` to `/proc/self/fd/N` in the child), so
//!   a symlink swapped in after the policy check is refused, not followed. Elsewhere the
//!   path is used, re-checked just before.
//! - The environment is the engine's minus secrets ([`crate::sandbox::secrets`]); stdin is empty.
//! - The child leads its own process group, and the whole group is killed when the call
//!   ends: at the timeout, when the call is dropped (the agent is cancelled or timed out),
//!   and after the program exits. Without the sandbox, a process that leaves the group on
//!   purpose (`setsid`) is not followed; in the sandbox ([`crate::sandbox`]) the child is
//!   the sandbox helper, and its PID namespace takes every process of the call with it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use codex_actors::tool::ToolError;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::sandbox::secrets;

/// What a finished program left.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output, capped.
    pub stdout: Captured,
    /// Its standard error, capped.
    pub stderr: Captured,
}

/// A capped output stream.
#[derive(Debug, Default)]
pub struct Captured {
    /// The first bytes, up to the cap.
    pub bytes: Vec<u8>,
    /// How many bytes the program wrote in all.
    pub total: usize,
}

/// Checks that `program` is a bare name, for the plan.
pub fn check_name(program: &str) -> Result<(), ToolError> {
    if program.is_empty() || program.contains('/') || program == "." || program == ".." {
        return Err(ToolError::new(format!(
            "shell: `{program}` is not a program name; give the bare name of an allowed \
             program (no `/`), e.g. `cargo`"
        )));
    }
    Ok(())
}

/// The executable `program` names on `PATH`, skipping relative directories and directories
/// inside `workspace`.
pub fn find_on_path(program: &str, workspace: &Path) -> Result<PathBuf, ToolError> {
    check_name(program)?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute() && !inside(dir, workspace))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| ToolError::new(format!("shell: `{program}` was not found on PATH")))
}

fn inside(dir: &Path, workspace: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    dir.starts_with(workspace)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The command of an unconfined call: `program` with `args`, in the scrubbed environment.
pub fn plain(program: &Path, args: &[String]) -> Command {
    let mut command = Command::new(program);
    command.args(args).env_clear().envs(secrets::scrubbed_env());
    command
}

/// Runs `command` (a program and its arguments, see [`plain`] and
/// [`crate::sandbox::launch::command`]) in the directory `dir` (an open descriptor whose
/// path is `dir_path`), capping each stream at `cap` bytes and killing it after `timeout`.
pub async fn run(
    mut command: Command,
    dir: &OwnedFd,
    dir_path: &Path,
    cap: usize,
    timeout: Duration,
) -> Result<Finished, ToolError> {
    let program = PathBuf::from(command.as_std().get_program());
    command
        .current_dir(cwd_of(dir, dir_path))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| ToolError::new(format!("shell: cannot start `{}`: {e}", program.display())))?;
    let _group = KillGroupOnDrop(child.id());
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let all = async {
        let (stdout, stderr, status) =
            tokio::join!(capture(out, cap), capture(err, cap), child.wait());
        (stdout, stderr, status)
    };
    match tokio::time::timeout(timeout, all).await {
        Ok((stdout, stderr, status)) => Ok(Finished {
            status: status
                .map_err(|e| ToolError::new(format!("shell: waiting for the program: {e}")))?,
            stdout,
            stderr,
        }),
        Err(_) => {
            kill_group(child.id());
            let _ = child.kill().await;
            Err(ToolError::new(format!(
                "shell: the program did not finish within {} s and was killed; give a longer \
                 `timeout_secs` or a narrower command",
                timeout.as_secs()
            )))
        }
    }
}

/// The directory to `chdir` to: the descriptor itself where the OS allows it.
fn cwd_of(dir: &OwnedFd, dir_path: &Path) -> PathBuf {
    if cfg!(target_os = "linux") {
        PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
    } else {
        dir_path.to_owned()
    }
}

/// Kills the child's process group when dropped, however the call ends.
struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(id: Option<u32>) {
    let pid = id
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

async fn capture(stream: Option<impl AsyncRead + Unpin>, cap: usize) -> Captured {
    let mut captured = Captured::default();
    let Some(mut stream) = stream else {
        return captured;
    };
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(captured.bytes.len());
        captured.bytes.extend_from_slice(&buf[..n.min(room)]);
        captured.total += n;
    }
    captured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_are_refused() {
        for bad in ["", "/bin/sh", "./cargo", "../x", "a/b", ".", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("cargo").is_ok());
    }

    #[test]
    fn programs_are_found_on_path_but_not_inside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let ws = ws.path().canonicalize().unwrap();
        assert!(find_on_path("sh", &ws).is_ok());
        assert!(find_on_path("no-such-program-xyz", &ws).is_err());
        assert!(!inside(Path::new("/usr/bin"), &ws));
        assert!(inside(&ws.join("bin"), &ws));
    }
}

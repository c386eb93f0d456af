//! Codex's side of a sandboxed call: the command that starts the helper (`enter.rs`) with
//! the policy, a private temporary directory per call, and what the program's end means.
//!
//! The helper is this very executable (`/proc/self/exe`, resolved once), started as
//! `codex __sandbox-exec POLICY -- PROGRAM ARGS...`. Its first act is
//! `PR_SET_PDEATHSIG = SIGKILL` (then it checks that its parent is still the codex named in
//! [`PARENT_VAR`], else codex died before and it exits), so that a codex killed by SIGKILL
//! takes the helper (and through it the sandbox's PID namespace) along. Doing that in the
//! helper rather than between fork and exec leaves the command without a `pre_exec` step,
//! so it is started with `posix_spawn` (no copy of codex's page tables per call). The temporary directory is created here, given
//! to the program as `TMPDIR`, `TMP` and `TEMP`, writable in the sandbox, and removed when
//! the call ends.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::enter::{ERROR_PREFIX, HELPER_ARG, PARENT_VAR, SETUP_FAILED, TEMP_VAR};
use super::policy::SandboxPolicy;
use super::Sandbox;

/// A call's private temporary directory, removed on drop.
pub struct CallTemp(tempfile::TempDir);

impl CallTemp {
    /// A new, empty directory under the system's temporary directory.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self(
            tempfile::Builder::new()
                .prefix("codex-sandbox-")
                .tempdir()?,
        ))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// The command that runs `program` with `args` in `policy`'s sandbox, with `temp` as its
/// temporary directory. The caller adds the working directory, environment and stdio.
pub fn command(
    sandbox: &Sandbox,
    policy: &SandboxPolicy,
    program: &Path,
    args: &[String],
    temp: &CallTemp,
) -> Result<tokio::process::Command, String> {
    let json = serde_json::to_string(policy).map_err(|e| format!("sandbox policy: {e}"))?;
    let mut command = tokio::process::Command::new(&sandbox.helper);
    command
        .arg(HELPER_ARG)
        .arg(json)
        .arg("--")
        .arg(program)
        .args(args);
    command
        .env_clear()
        .envs(super::secrets::scrubbed_env())
        .env(TEMP_VAR, temp.path())
        .env("TMPDIR", temp.path())
        .env("TMP", temp.path())
        .env("TEMP", temp.path())
        .env(PARENT_VAR, std::process::id().to_string());
    Ok(command)
}

/// How a sandboxed program's end reads, when it is not an ordinary exit or signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ended by itself (any exit status, or a signal it did not get from the sandbox).
    Normal,
    /// The sandbox could not be set up; the helper said why.
    SetupFailed(String),
    /// A limit of the sandbox killed it.
    Killed(String),
}

/// Reads `status` (and the helper's `stderr`) of a sandboxed call.
pub fn ending(status: ExitStatus, stderr: &[u8], policy: &SandboxPolicy) -> Ending {
    if status.code() == Some(SETUP_FAILED) {
        let text = String::from_utf8_lossy(stderr);
        if let Some(line) = text.lines().rev().find(|l| l.starts_with(ERROR_PREFIX)) {
            return Ending::SetupFailed(line[ERROR_PREFIX.len()..].to_owned());
        }
    }
    match status.signal() {
        Some(libc::SIGXCPU) => Ending::Killed(format!(
            "it used its CPU time limit of {} s ([sandbox.limits] cpu_secs)",
            policy.limits.cpu_secs
        )),
        Some(libc::SIGXFSZ) => Ending::Killed(format!(
            "it wrote a file larger than its limit of {} MiB ([sandbox.limits] file_size_mb)",
            policy.limits.file_size_mb
        )),
        Some(libc::SIGSYS) => {
            Ending::Killed("it made a system call the sandbox forbids (seccomp)".into())
        }
        _ => Ending::Normal,
    }
}

/// The helper executable: this program.
pub fn this_executable() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SandboxPolicy {
        SandboxPolicy::derive(
            &[],
            &super::super::policy::Host {
                workspace: "/ws".into(),
                codex_home: None,
                toolchains: vec![],
                program_network: false,
            },
            super::super::Limits::default(),
        )
    }

    #[test]
    fn a_setup_failure_is_read_from_the_helpers_last_error_line() {
        let status = ExitStatus::from_raw(SETUP_FAILED << 8);
        let stderr = b"noise\ncodex sandbox: cannot create the namespaces (unshare): EPERM\n";
        assert_eq!(
            ending(status, stderr, &policy()),
            Ending::SetupFailed("cannot create the namespaces (unshare): EPERM".into())
        );
    }

    #[test]
    fn a_program_that_exits_125_itself_is_normal() {
        let status = ExitStatus::from_raw(SETUP_FAILED << 8);
        assert_eq!(ending(status, b"its own text\n", &policy()), Ending::Normal);
    }

    #[test]
    fn limit_signals_name_the_limit() {
        let Ending::Killed(why) = ending(ExitStatus::from_raw(libc::SIGXCPU), b"", &policy())
        else {
            panic!("not a kill");
        };
        assert!(why.contains("CPU time limit of 600 s"), "{why}");
        assert_eq!(
            ending(ExitStatus::from_raw(libc::SIGTERM), b"", &policy()),
            Ending::Normal
        );
    }
}

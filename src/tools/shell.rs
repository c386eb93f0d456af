//! `shell`: run one allowed program with an argument vector (no shell in between).
//!
//! Despite its name (kept because models know it), this tool never starts a shell: the
//! model gives `argv`, whose first element is a program name on the agent's `shell.exec`
//! allowlist. The plan is `Exec(program)` plus a read of the working directory (default:
//! the agent's scope); both must be allowed. How the program is found, started, limited
//! and stopped is in [`super::process`]. A non-zero exit status is a result, not an error:
//! the model needs the output of a failing `cargo test`.
//!
//! Confinement: a program does whatever its code does (`cargo` runs build scripts, `find
//! -exec`, `env` and `git -c alias.x='!...'` start other programs), so in a run every call
//! goes through the OS sandbox ([`crate::sandbox`]), derived from the calling agent's
//! effective policy (`ToolContext::policy`): it reads and writes only what the agent may,
//! gets no network, and nothing it starts outlives the call. The audit record of the call
//! names the sandbox; a program a sandbox limit killed is a tool error that says which.
//! [`Shell::UNCONFINED`] (`--sandbox=off`, and the tool-level tests) runs the program with
//! codex's own rights.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use codex_actors::model::ToolSpec;
use codex_actors::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{json, Value};

use super::args::Args;
use super::limits::{SHELL_DEFAULT_TIMEOUT_SECS, SHELL_MAX_OUTPUT_BYTES, SHELL_MAX_TIMEOUT_SECS};
use super::paths::default_to_scope;
use super::process::{self, Captured, Finished};
use super::{approved, beneath, spec};
use crate::sandbox::launch::{self, CallTemp, Ending};
use crate::sandbox::{Sandbox, SandboxMode};

const NAME: &str = "shell";
const KNOWN: &[&str] = &["argv", "cwd", "timeout_secs"];

/// The `shell` tool.
#[derive(Debug, Clone, Default)]
pub struct Shell {
    /// How programs are confined; `None`: not at all.
    sandbox: Option<Arc<Sandbox>>,
}

/// The unconfined shell, spelled like the unit struct this tool was, for the tool-level
/// tests that check the allowlist, arguments and environment.
#[allow(non_upper_case_globals)]
pub const Shell: Shell = Shell::UNCONFINED;

impl Shell {
    /// Programs run with codex's own rights.
    pub const UNCONFINED: Shell = Shell { sandbox: None };

    /// Programs run as `sandbox` says (its mode may be `off`).
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Self {
            sandbox: Some(sandbox),
        }
    }

    fn confining(&self) -> Option<&Sandbox> {
        self.sandbox
            .as_deref()
            .filter(|s| s.mode == SandboxMode::On)
    }
}

/// A checked call.
struct Call<'a> {
    argv: Vec<&'a str>,
    cwd: &'a str,
    timeout: Duration,
}

#[async_trait]
impl Tool for Shell {
    fn spec(&self) -> ToolSpec {
        spec(
            NAME,
            "Run a program with arguments, e.g. argv [\"cargo\", \"test\", \"--quiet\"]. No \
             shell: pipes, redirections, `;`, `&&`, `$VAR` and globs are passed as plain \
             text. Only the programs your permissions allow can run. Runs in your scope \
             unless `cwd` is given; output is capped at 32 KiB per stream; secrets are \
             removed from the environment.",
            json!({
                "argv": {"type": "array", "items": {"type": "string"}, "description": "Program name, then its arguments."},
                "cwd": {"type": "string", "description": "Working directory, relative to the workspace root. Default: your scope."},
                "timeout_secs": {"type": "integer", "minimum": 1, "description": "Kill the program after this many seconds (default 120, at most 900)."},
            }),
            &["argv"],
        )
    }

    fn plan(&self, arguments: &Value, ctx: &ToolContext) -> Result<Vec<Access>, ToolError> {
        let call = parse(arguments, ctx)?;
        let cwd = approved::plan(ctx, call.cwd)?.read_access();
        Ok(vec![Access::Exec(call.argv[0].to_owned()), cwd])
    }

    async fn invoke(
        &self,
        arguments: Value,
        approved: &[Access],
        ctx: &ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let call = parse(&arguments, ctx)?;
        let program = call.argv[0];
        if !approved.contains(&Access::Exec(program.to_owned())) {
            return Err(ToolError::new(format!(
                "shell: running `{program}` was not approved"
            )));
        }
        let checked = approved::recheck(ctx, call.cwd, approved)?;
        let binary = process::find_on_path(program, &checked.root)?;
        let dir = beneath::open_dir(&checked.root, Path::new(&checked.rel))
            .map_err(|e| ToolError::new(format!("shell: cannot enter `{}`: {e}", call.cwd)))?;
        let args: Vec<String> = call.argv[1..].iter().map(|a| a.to_string()).collect();
        let dir_path = checked.root.join(&checked.rel);
        let Some(sandbox) = self.confining() else {
            let command = process::plain(&binary, &args);
            let done = process::run(
                command,
                &dir,
                &dir_path,
                SHELL_MAX_OUTPUT_BYTES,
                call.timeout,
            )
            .await?;
            let mut out = ToolOutput::text(render(&done));
            out.sandbox = self
                .sandbox
                .as_ref()
                .map(|_| "off (--sandbox=off)".to_owned());
            return Ok(out);
        };
        let policy = sandbox.policy_for(&ctx.policy, &checked.root);
        let described = sandbox.describe(&policy);
        let temp = CallTemp::new().map_err(|e| {
            ToolError::new(format!(
                "shell: cannot create the call's temporary directory: {e}"
            ))
        })?;
        let command = launch::command(sandbox, &policy, &binary, &args, &temp)
            .map_err(|e| ToolError::new(format!("shell: {e}")))?;
        let done = process::run(
            command,
            &dir,
            &dir_path,
            SHELL_MAX_OUTPUT_BYTES,
            call.timeout,
        )
        .await
        .map_err(|e| ToolError::new(format!("{e} (sandbox: {described})")))?;
        match launch::ending(done.status, &done.stderr.bytes, &policy) {
            Ending::Normal => {
                let mut out = ToolOutput::text(render(&done));
                out.sandbox = Some(described);
                Ok(out)
            }
            Ending::SetupFailed(why) => Err(ToolError::new(format!(
                "shell: the sandbox could not be set up, so `{program}` did not run: {why} \
                 (see `codex sandbox check`)"
            ))),
            Ending::Killed(why) => Err(ToolError::new(format!(
                "shell: `{program}` was killed by the sandbox: {why}. Its output:\n{}\
                 (sandbox: {described})",
                render(&done)
            ))),
        }
    }
}

fn parse<'a>(arguments: &'a Value, ctx: &'a ToolContext) -> Result<Call<'a>, ToolError> {
    let args = Args::parse(NAME, arguments, KNOWN)?;
    let argv = args.string_array("argv")?;
    process::check_name(argv[0])?;
    let secs = args
        .opt_positive("timeout_secs")?
        .map_or(SHELL_DEFAULT_TIMEOUT_SECS, |s| s as u64);
    if secs > SHELL_MAX_TIMEOUT_SECS {
        return Err(ToolError::new(format!(
            "shell: `timeout_secs` is at most {SHELL_MAX_TIMEOUT_SECS}"
        )));
    }
    Ok(Call {
        argv,
        cwd: default_to_scope(args.opt_string("cwd")?, &ctx.scope),
        timeout: Duration::from_secs(secs),
    })
}

fn render(done: &Finished) -> String {
    let status = match done.status.code() {
        Some(code) => format!("exit status: {code}"),
        None => "exit status: killed by a signal".to_owned(),
    };
    format!(
        "{status}\n{}{}",
        stream("stdout", &done.stdout),
        stream("stderr", &done.stderr)
    )
}

fn stream(name: &str, captured: &Captured) -> String {
    if captured.total == 0 {
        return format!("[{name}: empty]\n");
    }
    let mut text = String::from_utf8_lossy(&captured.bytes).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut out = format!("--- {name} ---\n{text}");
    if captured.total > captured.bytes.len() {
        out.push_str(&format!(
            "[{name} truncated: showing the first {} of {} bytes]\n",
            captured.bytes.len(),
            captured.total
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_support::Fixture;

    #[tokio::test]
    async fn plan_is_exec_plus_a_read_of_the_working_directory() {
        let mut f = Fixture::new();
        f.ctx.scope = "src".into();
        f.write("src/a.rs", "");
        let plan = f.plan(&Shell, json!({"argv": ["cargo", "test"]})).unwrap();
        assert_eq!(
            plan,
            [Access::Exec("cargo".into()), Access::Read("src".into())]
        );
    }

    #[tokio::test]
    async fn runs_in_the_directory_and_reports_status_and_output() {
        let f = Fixture::new();
        f.write("sub/marker.txt", "");
        let out = f
            .run(&Shell, json!({"argv": ["ls"], "cwd": "sub"}))
            .await
            .unwrap()
            .content;
        assert_eq!(
            out,
            "exit status: 0\n--- stdout ---\nmarker.txt\n[stderr: empty]\n"
        );
    }

    #[tokio::test]
    async fn a_failing_program_is_a_result_not_an_error() {
        let f = Fixture::new();
        let out = f
            .run(&Shell, json!({"argv": ["ls", "nope"]}))
            .await
            .unwrap()
            .content;
        assert!(out.starts_with("exit status: 2\n"), "{out}");
        assert!(out.contains("--- stderr ---"), "{out}");
    }

    #[tokio::test]
    async fn output_is_capped_with_a_note() {
        let f = Fixture::new();
        f.write("big.txt", "x".repeat(SHELL_MAX_OUTPUT_BYTES + 100));
        let out = f
            .run(&Shell, json!({"argv": ["cat", "big.txt"]}))
            .await
            .unwrap()
            .content;
        assert!(out.contains("[stdout truncated: showing the first 32768 of 32868 bytes]"));
    }

    #[tokio::test]
    async fn a_slow_program_is_killed_at_the_timeout() {
        let f = Fixture::new();
        let args = json!({"argv": ["sleep", "30"], "timeout_secs": 1});
        let err = f.run(&Shell, args).await.unwrap_err();
        assert!(err.0.contains("did not finish within 1 s"), "{err}");
    }

    #[tokio::test]
    async fn a_cancelled_call_kills_what_the_program_started_in_the_background() {
        let f = Fixture::new();
        let script = "sleep 30 & echo $! > bg.pid; wait";
        let args = json!({"argv": ["sh", "-c", script], "timeout_secs": 60});
        let plan = f.plan(&Shell, args.clone()).unwrap();
        let call = Shell.invoke(args, &plan, &f.ctx);
        // Dropping the call is what cancelling the agent does.
        let dropped = tokio::time::timeout(Duration::from_millis(500), call).await;
        assert!(dropped.is_err(), "the script should still be running");
        let pid: u32 = f.read("bg.pid").trim().parse().unwrap();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        };
        for _ in 0..100 {
            if !alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("background process {pid} outlived the cancelled call");
    }

    #[tokio::test]
    async fn invoke_refuses_a_program_the_plan_did_not_approve() {
        let f = Fixture::new();
        let args = json!({"argv": ["ls"]});
        let err = Shell
            .invoke(args, &[Access::Read(String::new())], &f.ctx)
            .await
            .unwrap_err();
        assert!(err.0.contains("not approved"), "{err}");
    }

    #[tokio::test]
    async fn bad_argv_is_named() {
        let f = Fixture::new();
        for args in [
            json!({"argv": []}),
            json!({"argv": "ls -l"}),
            json!({"argv": ["/bin/ls"]}),
        ] {
            assert!(f.plan(&Shell, args).is_err());
        }
    }
}

//! The OS sandbox of agents' programs, attacked through the real binary: a replay script
//! plays a hostile agent whose allowed programs try to read a secret outside the
//! workspace, write outside it or into `.git`, reach a listener on 127.0.0.1, leave
//! processes behind, or outlive a SIGKILLed codex; and a legitimate agent runs
//! `cargo test` on a small crate. Each escape that a test shows contained is also shown to
//! work with `--sandbox=off`, so the test can see an escape when there is one.
//!
//! These tests need Landlock and unprivileged user namespaces; they fail (never skip) on a
//! machine without them (see `sandbox_check_passes_on_this_machine`).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Workspace;
use serde_json::Value;

/// A directory outside the workspace holding `secret.txt`, and where escapes write.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET-7f3a\n").unwrap();
        Self { dir }
    }

    /// Its path relative to the workspace root (`../.tmpXXXX`).
    fn rel(&self, ws: &Workspace) -> String {
        let parent = ws.root().parent().unwrap().to_owned();
        let own = self.dir.path().canonicalize().unwrap();
        assert_eq!(own.parent().unwrap(), parent, "both in the temp dir");
        format!("../{}", own.file_name().unwrap().to_string_lossy())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A workspace with agent `hostile` (reads everything, writes `artifacts/`, runs
/// `programs`) playing `calls` (one turn each, as YAML flow mappings of `argv`).
fn hostile(programs: &[&str], calls: &[String]) -> Workspace {
    let ws = Workspace::new();
    ws.dir("artifacts");
    ws.agent(
        "hostile",
        &format!(
            "name: hostile\ngoal: g\ntools:\n  fs:\n    read: true\n    write: [artifacts/]\n  shell:\n    exec: [{}]\nbudget: 50000\nmax_output_tokens: 200\n",
            programs.join(", ")
        ),
    );
    play(&ws, calls);
    ws
}

/// Writes the replay script: one `shell` call per turn, then the answer.
fn play(ws: &Workspace, calls: &[String]) {
    let mut turns = String::new();
    for call in calls {
        turns += &format!(
            "      - text: go\n        tool_calls:\n          - {{name: shell, arguments: {{argv: {call}, timeout_secs: 60}}}}\n"
        );
    }
    ws.replay(&format!(
        "agents:\n  hostile:\n    turns:\n{turns}      - text: done\n"
    ));
}

/// `["sh", "-c", script]` as YAML, the script single-quoted.
fn sh(script: &str) -> String {
    format!("[sh, -c, '{}']", script.replace('\'', "''"))
}

fn run(ws: &Workspace, extra: &[&str]) -> Vec<Value> {
    ws.codex()
        .args(["delegate", "hostile", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .args(extra)
        .env_remove("CARGO_TARGET_DIR")
        .assert()
        .success();
    ws.audit()
}

fn tool_calls(audit: &[Value]) -> Vec<&Value> {
    common::of_type(audit, "tool_call")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The escape scripts: read the secret into an artifact, write next to it, write into
/// `src/` (readable, not writable).
fn escape_script(out: &str) -> String {
    format!("cat {out}/secret.txt > artifacts/leak.txt; echo pwned > {out}/pwned; echo pwned > src/pwned.rs; true")
}

fn assert_contained(ws: &Workspace, outside: &Outside) {
    assert!(!read(&ws.path("artifacts/leak.txt")).contains("TOP-SECRET"));
    assert!(
        !outside.path("pwned").exists(),
        "wrote outside the workspace"
    );
    assert!(
        !ws.path("src/pwned.rs").exists(),
        "wrote outside its writable dirs"
    );
}

fn assert_escaped(ws: &Workspace, outside: &Outside) {
    assert!(read(&ws.path("artifacts/leak.txt")).contains("TOP-SECRET"));
    assert!(outside.path("pwned").exists());
}

#[test]
fn sh_cannot_read_or_write_outside_what_the_agent_may() {
    let outside = Outside::new();
    let ws = hostile(&["sh"], &[]);
    play(&ws, &[sh(&escape_script(&outside.rel(&ws)))]);
    run(&ws, &[]);
    assert_contained(&ws, &outside);
}

/// Runs `argv` (built from the outside dir's relative path) as `program` in a sandbox,
/// then with `--sandbox=off`, and checks the first contained and the second escaped.
fn contained_and_escapes_without_sandbox(program: &str, argv: impl Fn(&str) -> String) {
    for off in [false, true] {
        let outside = Outside::new();
        let ws = hostile(&[program], &[]);
        play(&ws, &[argv(&outside.rel(&ws))]);
        if off {
            run(&ws, &["--sandbox", "off"]);
            assert_escaped(&ws, &outside);
        } else {
            run(&ws, &[]);
            assert_contained(&ws, &outside);
        }
    }
}

#[test]
fn find_exec_is_contained() {
    contained_and_escapes_without_sandbox("find", |out| {
        format!(
            "[find, ., -maxdepth, '0', -exec, sh, -c, '{}', ';']",
            escape_script(out)
        )
    });
}

#[test]
fn env_is_contained() {
    contained_and_escapes_without_sandbox("env", |out| {
        format!("[env, sh, -c, '{}']", escape_script(out))
    });
}

#[test]
fn xargs_is_contained() {
    contained_and_escapes_without_sandbox("xargs", |out| {
        format!(
            "[xargs, -a, src/lib.rs, -r, -n, '1000', sh, -c, '{}']",
            escape_script(out)
        )
    });
}

#[test]
fn a_git_alias_is_contained() {
    contained_and_escapes_without_sandbox("git", |out| {
        format!("[git, -c, 'alias.x=!sh -c \"{}\"', x]", escape_script(out))
    });
}

#[test]
fn git_and_codex_dirs_stay_read_only_for_a_writing_agent() {
    let ws = Workspace::new();
    ws.file(".git/config", "[core]\n");
    let script = "echo evil >> .git/config; mkdir -p .git/hooks; echo x > .git/hooks/pre-commit; \
                  echo 'name: evil' > .codex/agents/evil.yaml; echo ok > src/ok.txt; true";
    ws.agent(
        "hostile",
        "name: hostile\ngoal: g\ntools:\n  fs:\n    read: true\n    write: true\n  shell:\n    exec: [sh]\nbudget: 50000\nmax_output_tokens: 200\n",
    );
    ws.replay(&format!(
        "agents:\n  hostile:\n    turns:\n      - text: go\n        tool_calls:\n          - {{name: shell, arguments: {{argv: {}}}}}\n      - text: done\n",
        sh(script)
    ));
    run(&ws, &[]);
    assert_eq!(read(&ws.path(".git/config")), "[core]\n");
    assert!(!ws.path(".git/hooks/pre-commit").exists());
    assert!(!ws.path(".codex/agents/evil.yaml").exists());
    assert_eq!(read(&ws.path("src/ok.txt")), "ok\n", "the legitimate write");
}

#[test]
fn seccomp_refuses_new_namespaces() {
    for off in [false, true] {
        let script = "unshare --user --map-root-user true && echo escaped > artifacts/ns.txt; true";
        let ws = hostile(&["sh"], &[sh(script)]);
        if off {
            run(&ws, &["--sandbox=off"]);
            assert_eq!(
                read(&ws.path("artifacts/ns.txt")),
                "escaped\n",
                "control run"
            );
        } else {
            run(&ws, &[]);
            assert!(!ws.path("artifacts/ns.txt").exists());
        }
    }
}

/// Whether a connection to `listener` is waiting (it never blocks).
fn connected(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    listener.accept().is_ok()
}

#[test]
fn no_connection_reaches_a_local_listener_when_network_is_denied() {
    for off in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!("echo hi > /dev/tcp/127.0.0.1/{port}");
        let call = format!("[bash, -c, '{script}']");
        let ws = hostile(&["bash"], &[call]);
        if off {
            run(&ws, &["--sandbox=off"]);
            assert!(connected(&listener), "the control run must connect");
        } else {
            run(&ws, &[]);
            assert!(
                !connected(&listener),
                "a sandboxed program reached 127.0.0.1"
            );
        }
    }
}

#[test]
fn no_datagram_reaches_a_local_udp_socket_when_network_is_denied() {
    for off in [false, true] {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let call = format!("[bash, -c, 'echo hi > /dev/udp/127.0.0.1/{port}; true']");
        let ws = hostile(&["bash"], &[call]);
        run(&ws, if off { &["--sandbox=off"] } else { &[] });
        socket.set_nonblocking(true).unwrap();
        let received = socket.recv(&mut [0; 16]).is_ok();
        assert_eq!(received, off, "sandboxed: {}", !off);
    }
}

/// Pids of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = read(&entry.path().join("stat"));
        if String::from_utf8_lossy(&cmdline).contains(marker) && !stat.contains(") Z ") {
            pids.push(pid);
        }
    }
    pids
}

fn kill_all(pids: &[u32]) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

/// A `sleep` argument no other process has: seconds with a unique fraction.
fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("900.{}{}", std::process::id(), nanos)
}

#[test]
fn a_setsid_child_does_not_outlive_its_call() {
    for off in [false, true] {
        let secs = unique_sleep();
        // The call ends only once the child has left the process group (it wrote its pid
        // after setsid), so without the sandbox it is sure to escape the group kill.
        let script = format!(
            "setsid -f sh -c \"echo \\$\\$ > artifacts/pid; exec sleep {secs}\" > /dev/null 2>&1 < /dev/null; \
             while [ ! -s artifacts/pid ]; do sleep 0.01; done; echo started"
        );
        let ws = hostile(&["sh"], &[sh(&script)]);
        if off {
            run(&ws, &["--sandbox=off"]);
            let left = processes_with(&secs);
            kill_all(&left);
            assert!(
                !left.is_empty(),
                "the control run must leave the sleep behind"
            );
        } else {
            run(&ws, &[]);
            assert_eq!(processes_with(&secs), Vec::<u32>::new());
        }
    }
}

/// Waits (at most 60 s, polling) until `done` holds.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nothing_an_agent_started_survives_a_sigkill_of_codex() {
    let secs = unique_sleep();
    let script = format!("setsid -f sleep {secs}; sleep {secs} & sleep {secs}");
    let ws = hostile(&["sh"], &[sh(&script)]);
    let mut codex = ws
        .codex_std()
        .args(["delegate", "hostile", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the three sleeps start", || {
        processes_with(&secs).len() >= 3
    });
    codex.kill().unwrap();
    codex.wait().unwrap();
    eventually("every sleep is gone", || processes_with(&secs).is_empty());
}

#[test]
fn the_audit_record_names_the_sandbox() {
    let ws = hostile(&["true"], &["[\"true\"]".to_owned()]);
    let audit = run(&ws, &[]);
    let calls = tool_calls(&audit);
    let sandbox = calls[0]["sandbox"].as_str().expect("a sandbox field");
    assert!(sandbox.starts_with("landlock ABI "), "{sandbox}");
    for part in [
        "seccomp",
        // Landlock ABI 6+ (this machine: 7): seccomp keeps programs off the network, no
        // network namespace needed.
        "namespaces user+mount+pid;",
        "read .",
        "write artifacts",
        "network none (Unix sockets only)",
        "limits cpu 600 s",
    ] {
        assert!(sandbox.contains(part), "{part} in {sandbox}");
    }
    let off = hostile(&["true"], &["[\"true\"]".to_owned()]);
    let audit = run(&off, &["--sandbox=off"]);
    assert_eq!(tool_calls(&audit)[0]["sandbox"], "off (--sandbox=off)");
}

#[test]
fn a_program_killed_by_a_sandbox_limit_is_a_clear_tool_error() {
    let ws = hostile(&["sh"], &[sh("while :; do :; done")]);
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        "[sandbox.limits]\ncpu_secs = 1\n",
    )
    .unwrap();
    let audit = run(&ws, &[]);
    let call = tool_calls(&audit)[0];
    assert_eq!(call["outcome"], "error");
    let error = call["error"].as_str().unwrap();
    assert!(
        error.contains("was killed by the sandbox: it used its CPU time limit of 1 s"),
        "{error}"
    );
}

#[test]
fn codex_s_own_process_and_environment_are_invisible() {
    let script = "cat /proc/[0-9]*/environ > artifacts/environ.txt 2>/dev/null; ls /proc > artifacts/proc.txt; true";
    let ws = hostile(&["sh"], &[sh(script)]);
    ws.codex()
        .args(["delegate", "hostile", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .env("MARKER_API_KEY", "marker-secret-51f0c2")
        .assert()
        .success();
    let environ = read(&ws.path("artifacts/environ.txt"));
    assert!(!environ.contains("marker-secret-51f0c2"));
    let pids: Vec<String> = read(&ws.path("artifacts/proc.txt"))
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect();
    assert!(pids.len() <= 4, "only the sandbox's processes: {pids:?}");
    assert!(pids.contains(&"1".to_owned()), "{pids:?}");
}

#[test]
fn system_secrets_stay_unreadable_while_their_directories_are_readable() {
    let cargo_home = tempfile::tempdir().unwrap();
    std::fs::write(
        cargo_home.path().join("credentials.toml"),
        "token = \"cio-5e1d\"\n",
    )
    .unwrap();
    std::fs::write(cargo_home.path().join("config.toml"), "# cargo-config-ok\n").unwrap();
    let home = cargo_home.path().display();
    let script = format!(
        "cat /etc/shadow {home}/credentials.toml > artifacts/stolen.txt 2>/dev/null; \
         cat /etc/passwd {home}/config.toml > artifacts/allowed.txt; true"
    );
    let ws = hostile(&["sh"], &[sh(&script)]);
    ws.codex()
        .args(["delegate", "hostile", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .env("CARGO_HOME", cargo_home.path())
        .assert()
        .success();
    assert_eq!(read(&ws.path("artifacts/stolen.txt")), "");
    let allowed = read(&ws.path("artifacts/allowed.txt"));
    assert!(
        allowed.contains("root:") && allowed.contains("cargo-config-ok"),
        "{allowed}"
    );
}

#[test]
fn a_delegated_agents_programs_get_only_what_its_parent_may_do_too() {
    let ws = Workspace::new();
    ws.dir("artifacts");
    ws.agent(
        "lead",
        "name: lead\ngoal: g\ntools:\n  fs:\n    read: true\n    write: [artifacts/]\n  shell:\n    exec: [sh]\n  delegate:\n    agents: [helper]\nbudget: 50000\nmax_output_tokens: 200\n",
    );
    ws.agent(
        "helper",
        "name: helper\ngoal: g\ntools:\n  fs:\n    read: true\n    write: true\n  shell:\n    exec: [sh]\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    let script = sh("echo child > src/child.txt; echo child > artifacts/child.txt; true");
    ws.replay(&format!(
        "agents:\n  lead:\n    turns:\n      - text: go\n        tool_calls:\n          - {{name: delegate, arguments: {{agent: helper, goal: write, budget: 10000}}}}\n      - text: done\n  \"lead/helper#1\":\n    turns:\n      - text: go\n        tool_calls:\n          - {{name: shell, arguments: {{argv: {script}}}}}\n      - text: done\n"
    ));
    ws.codex()
        .args(["delegate", "lead", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .assert()
        .success();
    let audit = ws.audit();
    let calls = tool_calls(&audit);
    let shell = calls
        .iter()
        .find(|c| c["tool"] == "shell")
        .expect("the child's shell call");
    assert_eq!(shell["agent"], "lead/helper#1");
    assert!(
        shell["sandbox"]
            .as_str()
            .unwrap()
            .contains("write artifacts;"),
        "{shell}"
    );
    assert_eq!(read(&ws.path("artifacts/child.txt")), "child\n");
    assert!(
        !ws.path("src/child.txt").exists(),
        "the parent may not write src/"
    );
}

const CRATE_TOML: &str =
    "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n";
const CRATE_LOCK: &str = "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"tiny\"\nversion = \"0.1.0\"\n";

#[test]
fn test_gen_runs_cargo_test_on_a_small_crate_and_sees_it_pass() {
    let ws = Workspace::empty();
    ws.file("Cargo.toml", CRATE_TOML);
    ws.file("Cargo.lock", CRATE_LOCK);
    ws.file(
        "src/lib.rs",
        "pub fn double(x: u32) -> u32 {\n    x * 2\n}\n",
    );
    // The test writes a marker once its assertion held: proof that it compiled, ran and
    // passed inside the sandbox.
    let test = "#[test]\nfn doubles() {\n    assert_eq!(tiny::double(21), 42);\n    std::fs::write(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/tests/passed.txt\"), \"ok\").unwrap();\n}\n";
    let test_json = serde_json::to_string(test).unwrap();
    ws.replay(&format!(
        "agents:\n  test-gen:\n    turns:\n      - text: write\n        tool_calls:\n          - {{name: write_file, arguments: {{path: tests/double.rs, content: {test_json}}}}}\n      - text: run\n        tool_calls:\n          - {{name: shell, arguments: {{argv: [cargo, test, --offline, --target-dir, tests/target], timeout_secs: 600}}}}\n      - text: done\n"
    ));
    ws.codex()
        .args(["delegate", "test-gen", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .assert()
        .success();
    let audit = ws.audit();
    let calls = tool_calls(&audit);
    let shell = calls.iter().find(|c| c["tool"] == "shell").unwrap();
    assert_eq!(shell["outcome"], "ok", "{shell}");
    assert!(shell["sandbox"]
        .as_str()
        .unwrap()
        .contains("write artifacts,tests"));
    assert_eq!(read(&ws.path("tests/passed.txt")), "ok");
}

#[test]
fn sandbox_check_passes_on_this_machine() {
    let ws = Workspace::new();
    let out = ws.codex().args(["sandbox", "check"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("landlock         ABI "), "{text}");
    assert!(text.contains("trial            ok"), "{text}");
}

#[test]
fn sandbox_run_runs_a_program_as_the_agents_shell_would() {
    let outside = Outside::new();
    let ws = hostile(&["cat"], &[]);
    let rel = outside.rel(&ws);
    let out = ws
        .codex()
        .args(["sandbox", "run", "hostile", "--", "cat"])
        .arg(format!("{rel}/secret.txt"))
        .assert()
        .failure();
    let output = out.get_output();
    assert!(!String::from_utf8_lossy(&output.stdout).contains("TOP-SECRET"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sandbox: landlock ABI"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    ws.codex()
        .args(["sandbox", "run", "hostile", "--", "cat", "src/lib.rs"])
        .assert()
        .success()
        .stdout(predicates::str::contains("pub fn answer"));
}

/// As an unprivileged user (nobody, via `setpriv`, when the tests run as root), the
/// sandbox still starts and still contains.
#[test]
fn the_sandbox_works_for_an_unprivileged_user() {
    let outside = Outside::new();
    let ws = hostile(&["cat"], &[]);
    let rel = outside.rel(&ws);
    // SAFETY: geteuid takes no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    let codex = env!("CARGO_BIN_EXE_codex");
    // A copy nobody can reach whatever the checkout's directories allow.
    let bin = tempfile::tempdir().unwrap();
    let copy = bin.path().join("codex");
    std::fs::copy(codex, &copy).unwrap();
    let mut cmd = if root {
        for p in [
            ws.root(),
            outside.dir.path().to_owned(),
            ws.home().to_owned(),
            bin.path().to_owned(),
        ] {
            chmod_world(&p);
        }
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy);
        c
    } else {
        std::process::Command::new(codex)
    };
    let out = cmd
        .env("CODEX_HOME", ws.home())
        .args(["-C"])
        .arg(ws.root())
        .args(["sandbox", "run", "hostile", "--", "cat"])
        .arg(format!("{rel}/secret.txt"))
        .arg("src/lib.rs")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("pub fn answer"), "{stdout}\n{stderr}");
    assert!(!stdout.contains("TOP-SECRET"), "{stdout}");
    assert!(stderr.contains("sandbox: landlock ABI"), "{stderr}");
}

fn chmod_world(dir: &Path) {
    std::process::Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(dir)
        .status()
        .unwrap();
}

/// A workspace whose agent `caller` (reads everything, writes `artifacts/`) calls the tool
/// of the hostile MCP server `probe` (`tests/mcp_servers/probe.py`) once: it reads
/// `outside`'s secret and connects to `port`, reporting into `artifacts/probe.txt`.
/// `server_extra` is added to the server's config.
fn probing(outside: &Outside, port: u16, server_extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.dir("artifacts");
    ws.agent(
        "caller",
        "name: caller\ngoal: g\ntools:\n  fs:\n    read: true\n    write: [artifacts/]\n  mcp: [\"probe.*\"]\nbudget: 50000\nmax_output_tokens: 200\n",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_servers/probe.py");
    // The system's Python: a version manager's shim on PATH (pyenv) runs programs from
    // outside the PATH directories, which the sandbox does not open.
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("python3 in /usr/bin or /usr/local/bin");
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        format!(
            "[mcp_servers.probe]\ncommand = {python:?}\nargs = [{:?}]\n{server_extra}",
            script.display().to_string()
        ),
    )
    .unwrap();
    let args = serde_json::json!({
        "secret": outside.path("secret.txt"),
        "port": port,
        "report": ws.path("artifacts/probe.txt"),
    });
    ws.replay(&format!(
        "agents:\n  caller:\n    turns:\n      - text: go\n        tool_calls:\n          - {{name: probe__probe, arguments: {args}}}\n      - text: done\n"
    ));
    ws
}

/// Runs `caller`; its stderr and audit log.
fn run_caller(ws: &Workspace) -> (String, Vec<Value>) {
    let out = ws
        .codex()
        .args(["delegate", "caller", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    (stderr, ws.audit())
}

fn server_started(audit: &[Value]) -> Value {
    common::of_type(audit, "server_started")
        .first()
        .map(|r| (*r).clone())
        .expect("a server_started record")
}

#[test]
fn an_mcp_server_runs_in_the_sandbox_of_the_agents_that_use_it() {
    let outside = Outside::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ws = probing(&outside, listener.local_addr().unwrap().port(), "");
    let (_, audit) = run_caller(&ws);
    // The server ran and wrote its report where its agent may write...
    let report = read(&ws.path("artifacts/probe.txt"));
    assert!(report.contains("read refused"), "{report}");
    // ...but neither read the secret nor reached the listener.
    assert!(!report.contains("TOP-SECRET"), "{report}");
    assert!(report.contains("connect refused"), "{report}");
    assert!(
        !connected(&listener),
        "a sandboxed MCP server reached 127.0.0.1"
    );
    let started = server_started(&audit);
    assert_eq!(started["server"], "probe");
    let sandbox = started["sandbox"]
        .as_str()
        .expect("its sandbox is recorded");
    assert!(
        sandbox.contains("landlock") && sandbox.contains("write artifacts"),
        "{sandbox}"
    );
}

#[test]
fn an_mcp_server_that_opts_out_runs_unconfined_and_the_run_says_why() {
    let outside = Outside::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let reason = "it calls the issue tracker's API";
    let ws = probing(
        &outside,
        listener.local_addr().unwrap().port(),
        &format!("sandbox = false\nsandbox_reason = {reason:?}\n"),
    );
    let (stderr, audit) = run_caller(&ws);
    let report = read(&ws.path("artifacts/probe.txt"));
    assert!(report.contains("read: TOP-SECRET-7f3a"), "{report}");
    assert!(connected(&listener), "the unconfined server must connect");
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.contains("MCP server `probe` runs without the OS sandbox") && first.contains(reason),
        "{stderr}"
    );
    let started = server_started(&audit);
    assert!(started.get("sandbox").is_none(), "{started}");
    assert!(
        started["unsandboxed"].as_str().unwrap().contains(reason),
        "{started}"
    );
}

#[test]
fn an_mcp_server_opting_out_without_a_reason_is_refused() {
    let outside = Outside::new();
    let ws = probing(&outside, 9, "sandbox = false\n");
    ws.codex()
        .args(["delegate", "caller", "--goal", "g", "--replay"])
        .arg(ws.path("replay.yaml"))
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "[mcp_servers.probe] sets `sandbox = false` without a reason: add `sandbox_reason",
        ));
    assert!(!ws.path("artifacts/probe.txt").exists());
    assert!(!ws.path(".codex/runs").exists(), "nothing ran");
}

/// The two `shell` calls that show a run honours `[sandbox]`: one writes outside the
/// workspace (the kernel refuses), the other writes a 2 MiB file where the configured
/// `file_size_mb = 1` kills it.
fn outside_write_and_big_file(outside: &Outside, ws: &Workspace) -> Vec<String> {
    let out = outside.rel(ws);
    vec![
        sh(&format!("echo pwned > {out}/pwned; true")),
        "[dd, if=/dev/zero, of=artifacts/big, bs=1M, count=2]".to_owned(),
    ]
}

const ONE_MIB_FILES: &str = "[sandbox.limits]\nfile_size_mb = 1\n";

/// The audit log's two `shell` calls of [`outside_write_and_big_file`] show the kernel
/// refused the outside write and the configured limit killed the big write.
fn assert_configured_sandbox(audit: &[Value], outside: &Outside) {
    assert!(
        !outside.path("pwned").exists(),
        "wrote outside the workspace"
    );
    let calls: Vec<&Value> = tool_calls(audit)
        .into_iter()
        .filter(|c| c["tool"] == "shell")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let sandbox = calls[0]["sandbox"].as_str().expect("sandboxed");
    assert!(sandbox.contains("files 1 MiB"), "{sandbox}");
    let error = calls[1]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("killed by the sandbox: it wrote a file larger than its limit of 1 MiB"),
        "{error}"
    );
}

#[tokio::test]
async fn codex_mcp_server_runs_programs_in_the_sandbox_its_config_sets_up() {
    use rmcp::ServiceExt;
    let outside = Outside::new();
    let ws = hostile(&["sh", "dd"], &[]);
    play(&ws, &outside_write_and_big_file(&outside, &ws));
    std::fs::write(ws.home().join("codex-actors.toml"), ONE_MIB_FILES).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_codex"));
    cmd.env("CODEX_HOME", ws.home())
        .env_remove("CODEX_LOG")
        .current_dir(ws.root())
        .arg("-C")
        .arg(ws.root())
        .args(["mcp-server", "--replay"])
        .arg(ws.path("replay.yaml"));
    let transport = rmcp::transport::TokioChildProcess::new(cmd).unwrap();
    let service = ().serve(transport).await.expect("MCP handshake");
    let args = serde_json::json!({"agent": "hostile", "goal": "g"});
    let params = rmcp::model::CallToolRequestParams::new("delegate")
        .with_arguments(args.as_object().unwrap().clone());
    let result = service.call_tool(params).await.expect("a tool result");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    service.cancel().await.unwrap();
    assert_configured_sandbox(&ws.audit(), &outside);
}

#[test]
fn codex_agent_create_runs_programs_in_the_sandbox_its_config_sets_up() {
    let outside = Outside::new();
    let ws = Workspace::new();
    ws.dir("artifacts");
    let calls = outside_write_and_big_file(&outside, &ws);
    let definition = "name: shell-user\n          goal: g\n          instructions: i\n          tools:\n            fs: {read: true, write: [artifacts/]}\n            shell: {exec: [sh, dd]}\n          budget: 50000\n          max_output_tokens: 200";
    let mut turns = String::new();
    for call in &calls {
        turns += &format!(
            "      - text: go\n        tool_calls:\n          - {{name: shell, arguments: {{argv: {call}, timeout_secs: 60}}}}\n"
        );
    }
    ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n      - text: |\n          {definition}\n  default:\n    turns:\n{turns}      - text: done\n"
    ));
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        format!("[agent_create]\nallow_shell = true\n{ONE_MIB_FILES}"),
    )
    .unwrap();
    ws.codex()
        .args(["agent-create", "an agent that runs programs", "--replay"])
        .arg(ws.path("replay.yaml"))
        .assert()
        .success();
    assert_configured_sandbox(&ws.audit(), &outside);
}

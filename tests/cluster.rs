//! Agents on workers over NATS JetStream, through the binary: a real `nats-server` (JetStream
//! on, file store) on a free port, `codex worker` processes each with its own clone of the
//! workspace and its own `CODEX_HOME`, and the coordinator `codex delegate-parallel
//! --cluster`. Faults are real: SIGKILL of a worker, SIGSTOP / SIGCONT of one (a worker cut
//! off and coming back), NATS stopped and started again on the same store.
//!
//! Tests wait for events (a record in the audit log, a request at the model server, a line
//! from a worker), never for a fixed time. `nats-server` must be installed (Debian's
//! package; `.ci/run` installs it): without it these tests fail and say so.

mod common;
#[path = "support/fake_server.rs"]
mod fake_server;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use common::{agent_report, agent_yaml, git_in, read_audit, send_signal, wait_until, Workspace};
use fake_server::{script, FakeServer, Gate, Piece, Reply};
use serde_json::Value;
use tempfile::TempDir;

/// A `nats-server -js` on a free port with its own store, stopped on drop.
struct Nats {
    child: Child,
    port: u16,
    store: TempDir,
}

fn nats_server() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/bin"])
    {
        let candidate = Path::new(dir).join("nats-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("nats-server is not installed: `apt-get install nats-server` (.ci/run does it)");
}

impl Nats {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = tempfile::tempdir().unwrap();
        let child = Self::spawn(port, store.path());
        Nats { child, port, store }
    }

    fn spawn(port: u16, store: &Path) -> Child {
        let child = Command::new(nats_server())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        wait_until("nats-server to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        child
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and store.
    fn restart(&mut self) {
        send_signal("TERM", self.child.id());
        self.child.wait().unwrap();
        self.child = Self::spawn(self.port, self.store.path());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of NATS that the test can cut (every connection through it closed,
/// new ones closed at once) and heal: a network partition between one worker and the rest.
struct Proxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn to(nats: &Nats) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(AtomicBool::new(false));
        let (upstream, flag) = (nats.port, std::sync::Arc::clone(&cut));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = std::sync::Arc::clone(&flag);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match std::io::Read::read(&mut from, &mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if flag.load(Ordering::SeqCst)
                                || std::io::Write::write_all(&mut to, &buf[..n]).is_err()
                            {
                                break;
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, cut }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A `codex worker` with its own clone of the workspace and `CODEX_HOME`.
struct Worker {
    name: String,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

impl Worker {
    fn start(ws: &Workspace, nats: &Nats, name: &str, slots: usize, extra: &[&str]) -> Self {
        Self::start_at(ws, &nats.url(), name, slots, extra)
    }

    fn start_at(ws: &Workspace, url: &str, name: &str, slots: usize, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clone = dir.path().join("checkout");
        let status = Command::new("git")
            .arg("clone")
            .arg("-q")
            .arg(ws.root())
            .arg(&clone)
            .status()
            .unwrap();
        assert!(status.success());
        let home = dir.path().join("home");
        fs::create_dir_all(&home).unwrap();
        let log = dir.path().join("worker.log");
        let child = Command::new(env!("CARGO_BIN_EXE_codex"))
            .arg("-C")
            .arg(&clone)
            .args(["worker", "--nats", url, "--name", name])
            .args(["--slots", &slots.to_string(), "--heartbeat", "1s"])
            .args(extra)
            .env("CODEX_HOME", &home)
            .env("OPENAI_API_KEY", WORKER_KEY)
            .env_remove("CODEX_LOG")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start codex worker");
        let worker = Worker {
            name: name.to_owned(),
            child,
            log,
            _dir: dir,
        };
        wait_until(&format!("worker {name} to take attempts"), || {
            worker.log().contains("taking attempts from")
        });
        worker
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key only the workers have (the coordinator runs without it).
const WORKER_KEY: &str = "sk-worker-only-0123456789abcdef";

/// A git workspace with `agents` (read-only unless named `writer-*`) and a replay script
/// whose turns are the same for every agent (writers write their own note).
fn workspace(agents: &[String]) -> Workspace {
    let ws = Workspace::new();
    let mut replay = String::from("agents:\n");
    for name in agents {
        let writer = name.starts_with("writer");
        ws.agent(
            name,
            &agent_yaml(name, if writer { "true" } else { "false" }, 5000),
        );
        if writer {
            replay.push_str(&format!(
                "  {name}:\n    turns:\n      - text: Writing.\n        tool_calls:\n          - name: write_file\n            arguments: {{ path: notes/{name}.md, content: \"notes of {name}\\n\" }}\n        usage: {{ input_tokens: 300, output_tokens: 25 }}\n      - text: Wrote notes/{name}.md.\n        usage: {{ input_tokens: 340, output_tokens: 10 }}\n"
            ));
        }
    }
    replay.push_str(
        "  default:\n    turns:\n      - text: Reading.\n        tool_calls:\n          - name: read_file\n            arguments: { path: src/lib.rs }\n        usage: { input_tokens: 300, output_tokens: 20 }\n        delay_ms: 300\n      - text: The answer is 42.\n        usage: { input_tokens: 350, output_tokens: 15 }\n",
    );
    ws.replay(&replay);
    commit_all(&ws);
    // Uncommitted work the agents must see: a change and a new file.
    ws.file("src/lib.rs", "pub fn answer() -> u32 {\n    41 + 1\n}\n");
    ws.file("notes/draft.md", "not committed yet\n");
    ws
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

/// `codex delegate-parallel` of `agents` on the replay script, `-o` results.
fn run(ws: &Workspace, agents: &[String], cluster: Option<&Nats>) -> Command {
    let mut cmd = ws.codex_std();
    cmd.args(["delegate-parallel", &agents.join(","), "--quiet", "-o"])
        .arg(ws.results_path())
        .arg("--replay")
        .arg(ws.path("replay.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(nats) = cluster {
        cmd.args(["--cluster", &nats.url()]);
    }
    cmd
}

fn finish(cmd: &mut Command) -> (ExitStatus, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// What must be equal between two runs of the same agents: per agent its status, answer,
/// tokens, files and change; and the totals.
fn outcome(results: &Value) -> Value {
    let agents: BTreeMap<String, Value> = results["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let change = &a["change"];
            let files = change["files"].clone();
            let key = a["agent"].as_str().unwrap().to_owned();
            let kept = serde_json::json!({
                "status": a["status"], "final_message": a["final_message"],
                "tokens_used": a["tokens_used"], "artifacts": a["artifacts"],
                "change_files": files, "change_sha256": change["sha256"],
            });
            (key, kept)
        })
        .collect();
    serde_json::json!({
        "agents": agents,
        "success_count": results["success_count"],
        "total_tokens": results["total_tokens"],
    })
}

/// The audit log of the run in `ws` (the only one).
fn audit(ws: &Workspace) -> Vec<Value> {
    ws.audit()
}

/// Audit records of `ty` in the log of the newest run of `ws`, while it runs.
fn records_so_far(ws: &Workspace, ty: &str) -> Vec<Value> {
    let Ok(runs) = fs::read_dir(ws.path(".codex/runs")) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = runs
        .filter_map(|e| Some(e.ok()?.path().join("audit.jsonl")))
        .filter(|p| p.is_file())
        .collect();
    logs.sort();
    let Some(log) = logs.last() else {
        return Vec::new();
    };
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["type"] == ty)
        .collect()
}

fn verify(ws: &Workspace) {
    let out = ws
        .codex()
        .args(["audit", "verify", "last"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn thirty_agents_across_three_workers_end_as_the_same_run_on_one_machine() {
    let mut agents = names("reader", 27);
    agents.extend(names("writer", 3));
    // The same run twice from the same commit: here, then on the cluster.
    let here = workspace(&agents);
    let (status, out) = finish(&mut run(&here, &agents, None));
    assert!(status.success(), "{out}");
    let there = workspace(&agents);
    let nats = Nats::start();
    let workers: Vec<Worker> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| Worker::start(&there, &nats, n, 4, &[]))
        .collect();
    let (status, out) = finish(&mut run(&there, &agents, Some(&nats)));
    assert!(status.success(), "{out}");

    assert_eq!(outcome(&there.results()), outcome(&here.results()));
    // The workers read the uncommitted version: the same bytes as here.
    let read = |ws: &Workspace| -> BTreeSet<(String, u64)> {
        common::of_type(&ws.audit(), "tool_call")
            .iter()
            .map(|r| (r["agent"].to_string(), r["output_bytes"].as_u64().unwrap()))
            .collect()
    };
    let (read_there, read_here) = (read(&there), read(&here));
    // 56 bytes: read_file's output of the 38-byte uncommitted src/lib.rs (52 for the
    // committed one).
    assert!(
        read_here.contains(&("\"reader-00\"".into(), 56)),
        "{read_here:?}"
    );
    assert_eq!(read_there, read_here);
    let records = audit(&there);
    let placed = common::of_type(&records, "attempt_placed");
    let restarts: Vec<String> = common::of_type(&records, "agent_restarted")
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(placed.len(), 30, "one placement per agent: {restarts:#?}");
    let ran: BTreeSet<&str> = placed
        .iter()
        .map(|r| r["worker"].as_str().unwrap())
        .collect();
    let names: BTreeSet<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    assert!(ran.is_subset(&names), "{ran:?}");
    assert!(
        ran.len() >= 2,
        "slots of 4 cannot hold 30 agents on one worker: {ran:?}"
    );
    for agent in ["writer-00", "writer-02"] {
        let note = fs::read_to_string(
            there
                .run_dir()
                .join("worktrees")
                .join(agent)
                .join(format!("notes/{agent}.md")),
        );
        assert_eq!(note.unwrap(), format!("notes of {agent}\n"));
    }
    verify(&there);
}

#[test]
fn a_killed_workers_attempts_restart_on_the_others_and_nothing_is_charged_twice() {
    let agents = names("reader", 8);
    let ws = workspace(&agents);
    let nats = Nats::start();
    let victim = Worker::start(&ws, &nats, "w1", 4, &[]);
    let _others: Vec<Worker> = ["w2", "w3"]
        .iter()
        .map(|n| Worker::start(&ws, &nats, n, 4, &[]))
        .collect();
    let mut cmd = run(&ws, &agents, Some(&nats));
    cmd.args(["-c", "cluster.silence_limit=5s"]);
    let coordinator = cmd.spawn().unwrap();
    wait_until("an attempt on w1", || {
        records_so_far(&ws, "attempt_placed")
            .iter()
            .any(|r| r["worker"] == "w1")
    });
    send_signal("KILL", victim.pid());
    let out = coordinator.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let records = audit(&ws);
    let on_victim: Vec<String> = common::of_type(&records, "attempt_placed")
        .iter()
        .filter(|r| r["worker"] == "w1" && r["attempt"] == 1)
        .map(|r| r["agent"].as_str().unwrap().to_owned())
        .collect();
    assert!(!on_victim.is_empty());
    let results = ws.results();
    for agent in &on_victim {
        let report = agent_report(&results, agent);
        assert_eq!(report["status"], "completed", "{report:#}");
        assert!(report["restarts"].as_u64().unwrap() >= 1, "{report:#}");
        let placed_again = common::of_type(&records, "attempt_placed")
            .iter()
            .any(|r| r["agent"] == agent.as_str() && r["worker"] != "w1");
        assert!(placed_again, "{agent} ran again on another worker");
    }
    assert_ledger_is_what_was_served(&records, &results);
    verify(&ws);
}

/// Each agent's tokens are the usage of its completed calls plus the reservations of calls
/// cut short (charged in full, once), and no call was committed twice.
fn assert_ledger_is_what_was_served(records: &[Value], results: &Value) {
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut calls = BTreeSet::new();
    for r in common::of_type(records, "model_call") {
        let agent = r["agent"].as_str().unwrap().to_owned();
        let key = (agent.clone(), r["attempt"].as_u64(), r["turn"].as_u64());
        assert!(calls.insert(key.clone()), "call {key:?} recorded twice");
        let usage = &r["usage"];
        *expected.entry(agent).or_default() +=
            usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap();
    }
    for r in common::of_type(records, "budget_decision") {
        if r["op"] == "charge_in_flight" {
            let agent = r["agent"].as_str().unwrap().to_owned();
            *expected.entry(agent).or_default() += r["granted"].as_u64().unwrap();
        }
    }
    for report in results["agents"].as_array().unwrap() {
        let agent = report["agent"].as_str().unwrap();
        assert_eq!(
            report["tokens_used"].as_u64().unwrap(),
            expected.get(agent).copied().unwrap_or(0),
            "{agent}"
        );
    }
}

#[test]
fn a_run_goes_on_when_nats_is_restarted_under_it() {
    let agents = names("reader", 12);
    let ws = workspace(&agents);
    let mut nats = Nats::start();
    // Six slots for twelve agents: some orders wait in the queue while NATS is down.
    let _workers: Vec<Worker> = ["w1", "w2"]
        .iter()
        .map(|n| Worker::start(&ws, &nats, n, 3, &[]))
        .collect();
    let coordinator = run(&ws, &agents, Some(&nats)).spawn().unwrap();
    wait_until("a first attempt placed", || {
        !records_so_far(&ws, "attempt_placed").is_empty()
    });
    nats.restart();
    let out = coordinator.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let results = ws.results();
    assert_eq!(results["success_count"], 12, "{results:#}");
    assert_ledger_is_what_was_served(&audit(&ws), &results);
    verify(&ws);
}

/// Makes `ws` a git repository with everything in it committed.
fn commit_all(ws: &Workspace) {
    git_in(&ws.root(), &["init", "-q"]);
    git_in(&ws.root(), &["add", "-A"]);
    git_in(&ws.root(), &["commit", "-qm", "base"]);
}

/// A git workspace with read-only agents `names` and nothing uncommitted.
fn committed_workspace(names: &[&str]) -> Workspace {
    let ws = Workspace::new();
    for name in names {
        ws.agent(name, &agent_yaml(name, "false", 5000));
    }
    commit_all(&ws);
    ws
}

/// A model server answering call `n` with "answer of call n", after `gates[n]` opens when
/// there is one (a gate never opened: a call that never ends).
fn gated_server(gates: Vec<Gate>) -> FakeServer {
    FakeServer::with(move |_, n| {
        let text = format!("answer of call {n}");
        let answer = Reply::sse(script::chat(&[&text], &[], Some((100, 10))));
        match gates.get(n) {
            Some(gate) => {
                let mut held = Reply::sse(vec![]);
                held.body.push(Piece::Until(gate.clone()));
                held.body.extend(answer.body);
                held
            }
            None => answer,
        }
    })
}

/// A worker's `-c` flags for `server` (its key is in the worker's environment).
fn worker_config(server: &FakeServer) -> Vec<String> {
    let base_url = format!("providers.openai-chat.base_url={}/v1", server.url);
    ["-c", &base_url, "-c", "providers.openai-chat.max_retries=0"]
        .map(str::to_owned)
        .to_vec()
}

/// `codex delegate AGENT` on the cluster with the workers' provider and no key here.
fn delegate_on(ws: &Workspace, nats: &Nats, agent: &str, silence: &str) -> Command {
    let mut cmd = ws.codex_std();
    cmd.args(["delegate", agent, "--goal", "work", "--quiet", "-o"])
        .arg(ws.results_path())
        .args(["--provider", "openai-chat", "--model", "gpt-test"])
        .args(["--cluster", &nats.url()])
        .args(["-c", &format!("cluster.silence_limit={silence}")])
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_worker_cut_off_and_back_has_its_late_commit_refused() {
    let ws = committed_workspace(&["slow"]);
    // The first call (attempt 1) and the second (attempt 2) wait at gates the test opens.
    let (first, second) = (Gate::default(), Gate::default());
    let server = gated_server(vec![first.clone(), second.clone()]);
    let nats = Nats::start();
    let config = worker_config(&server);
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    // Each worker reaches NATS through its own proxy, so either can be cut off.
    let proxies = [Proxy::to(&nats), Proxy::to(&nats)];
    let w1 = Worker::start_at(&ws, &proxies[0].url(), "w1", 1, &config);
    let w2 = Worker::start_at(&ws, &proxies[1].url(), "w2", 1, &config);
    let coordinator = delegate_on(&ws, &nats, "slow", "5s").spawn().unwrap();

    wait_until("attempt 1's call", || server.received().len() == 1);
    let placed = records_so_far(&ws, "attempt_placed");
    let (cut_off, proxy) = match placed[0]["worker"] == "w1" {
        true => (&w1, &proxies[0]),
        false => (&w2, &proxies[1]),
    };
    proxy.set_cut(true);
    wait_until("attempt 2's call, from the other worker", || {
        server.received().len() == 2
    });
    // Attempt 1's call completes while its worker is still cut off; then the network heals
    // and the worker, which never heard that it was replaced, commits.
    first.open();
    proxy.set_cut(false);
    let refused = std::panic::catch_unwind(|| {
        wait_until("the late commit refused", || {
            !records_so_far(&ws, "remote_refused").is_empty()
        })
    });
    assert!(refused.is_ok(), "w1: {}\nw2: {}", w1.log(), w2.log());
    second.open();
    assert_success(&coordinator.wait_with_output().unwrap());

    let results = ws.results();
    let report = agent_report(&results, "slow");
    assert_eq!(report["final_message"], "answer of call 1", "{report:#}");
    let records = audit(&ws);
    let refused = common::of_type(&records, "remote_refused");
    assert_eq!(refused[0]["attempt"], 1);
    assert_eq!(refused[0]["request"], "commit");
    assert_eq!(refused[0]["worker"], cut_off.name.as_str());
    // Nothing of attempt 1's call reached the ledger but its reservation, charged once.
    let calls = common::of_type(&records, "model_call");
    assert!(calls.iter().all(|c| c["attempt"] == 2), "{calls:#?}");
    assert_ledger_is_what_was_served(&records, &results);
    let log = fs::read_to_string(ws.run_dir().join("audit.jsonl")).unwrap();
    assert!(
        !log.contains(WORKER_KEY),
        "the worker's key reached the log"
    );
    assert!(cut_off.log().contains("refused"), "{}", cut_off.log());
    verify(&ws);
}

#[test]
fn an_unreachable_nats_server_is_a_clear_error_before_anything_runs() {
    let agents = names("reader", 1);
    let ws = workspace(&agents);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = run(&ws, &agents, None);
    cmd.args([
        "--cluster",
        &format!("nats://ann:s3cret-pw@127.0.0.1:{port}"),
    ]);
    let (status, out) = finish(&mut cmd);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("cannot reach the NATS server"), "{out}");
    assert!(out.contains("nats-server -js"), "{out}");
    assert!(out.contains("nats://ann:***@127.0.0.1"), "{out}");
    assert!(!out.contains("s3cret-pw"), "the password was shown: {out}");
    assert!(!ws.path(".codex/runs").exists() || read_audit_count(&ws) == 0);
}

fn read_audit_count(ws: &Workspace) -> usize {
    fs::read_dir(ws.path(".codex/runs"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("audit.jsonl").is_file())
                .map(|e| read_audit(&e.path().join("audit.jsonl")).len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_workspace_outside_git_is_refused_for_a_cluster_run() {
    let ws = Workspace::new();
    ws.agent("reader-00", &agent_yaml("reader-00", "false", 5000));
    ws.replay("agents:\n  default:\n    turns:\n      - text: done\n");
    let nats = Nats::start();
    let agents = names("reader", 1);
    let (status, out) = finish(&mut run(&ws, &agents, Some(&nats)));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("top of a git repository"), "{out}");
}

#[test]
fn a_stopped_worker_hands_its_attempts_back_at_once() {
    let ws = committed_workspace(&["slow"]);
    // The first call never gets its answer; the second is answered at once.
    let server = gated_server(vec![Gate::default()]);
    let nats = Nats::start();
    let config = worker_config(&server);
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    let first = Worker::start(&ws, &nats, "w1", 1, &config);
    // Silence alone would take ten minutes: only the worker's own word is fast.
    let coordinator = delegate_on(&ws, &nats, "slow", "10m").spawn().unwrap();
    wait_until("attempt 1's call", || server.received().len() == 1);
    let _second = Worker::start(&ws, &nats, "w2", 1, &config);
    send_signal("TERM", first.pid());
    assert_success(&coordinator.wait_with_output().unwrap());
    let report = agent_report(&ws.results(), "slow").clone();
    assert_eq!(report["final_message"], "answer of call 1", "{report:#}");
    let records = audit(&ws);
    let restarted = common::of_type(&records, "agent_restarted");
    assert!(
        restarted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("its worker was stopped"),
        "{restarted:#?}"
    );
    verify(&ws);
}

#[test]
fn cancelling_the_run_stops_its_attempts_on_the_workers() {
    let ws = committed_workspace(&["slow", "quick"]);
    // The first call never gets its answer; later ones are answered at once.
    let server = gated_server(vec![Gate::default()]);
    let nats = Nats::start();
    let config = worker_config(&server);
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    // One slot: the second run can only start once the first run's attempt has left it.
    let _worker = Worker::start(&ws, &nats, "w1", 1, &config);
    let delegate = |agent: &str| delegate_on(&ws, &nats, agent, "10s");
    let first = delegate("slow").spawn().unwrap();
    wait_until("the first run's call", || server.received().len() == 1);
    send_signal("INT", first.id());
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (status, out) = finish(&mut delegate("quick"));
    assert!(status.success(), "the worker's slot came free: {out}");
}

#[test]
fn uncommitted_changes_too_big_for_one_message_are_a_clear_error() {
    let agents = names("reader", 1);
    let ws = workspace(&agents);
    let big: String = (0..40_000)
        .map(|i| format!("line {i} of a large draft\n"))
        .collect();
    ws.file("notes/large.md", &big);
    let nats = Nats::start();
    let (status, out) = finish(&mut run(&ws, &agents, Some(&nats)));
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("do not fit in one message"), "{out}");
    assert!(out.contains("commit"), "{out}");
}

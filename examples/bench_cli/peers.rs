//! The frameworks people would pick instead, doing the same workload against the same
//! server: the OpenAI Agents SDK and LangGraph (`benches/peers/`), installed into a venv
//! under the target directory. When they cannot be installed the driver says so and goes on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A peer framework and its script.
pub const PEERS: [(&str, &str); 2] = [
    ("OpenAI Agents SDK", "openai_agents_peer.py"),
    ("LangGraph", "langgraph_peer.py"),
];

/// The venv's python with the peers installed, or why not.
pub fn python(repo: &Path, target: &Path) -> Result<PathBuf, String> {
    let venv = target.join("bench-venv");
    let python = venv.join("bin/python");
    let requirements = repo.join("benches/peers/requirements.txt");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    let installed = Command::new(&python)
        .args(["-c", "import agents, langgraph, langchain_openai"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("installing the peer frameworks into {} ...", venv.display());
        run(Command::new(&python)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(&requirements))?;
    }
    Ok(python)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_owned())
    }
}

/// Runs one peer; the wall time it measured itself from its first call to its last answer
/// (its imports and setup not counted), or why it did not finish within `limit`.
pub fn measure(
    python: &Path,
    script: &Path,
    url: &str,
    workspace: &Path,
    agents: usize,
    turns: u64,
    limit: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(script)
        .args([
            "--url",
            url,
            "--agents",
            &agents.to_string(),
            "--turns",
            &turns.to_string(),
        ])
        .arg("--workspace")
        .arg(workspace)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                let mut out = String::new();
                use std::io::Read;
                let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut out));
                let wall = out
                    .lines()
                    .find_map(|l| l.strip_prefix("wall "))
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or("no `wall` line in its output")?;
                return Ok(Duration::from_secs_f64(wall));
            }
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
            return Err(err.lines().last().unwrap_or("failed").to_owned());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! The HTTP providers through the real binary: the whole agent loop over HTTP against a
//! fake model server (`tests/support/fake_server.rs`, included by path), provider
//! selection from flags, environment and the config file, and the errors reported before
//! anything runs.

mod common;
#[path = "support/fake_server.rs"]
mod fake_server;

use common::{agent_report, agent_yaml, of_type, Workspace};
use fake_server::{script, FakeServer, Received, Reply};
use predicates::prelude::*;
use serde_json::json;

const KEY: &str = "sk-e2e-secret-key-0123456789";

/// The goal text of a Chat Completions request's task message.
fn goal(req: &Received) -> String {
    req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .find(|c| c.starts_with("Goal: "))
        .unwrap_or("")
        .to_owned()
}

/// How many assistant turns the conversation already has.
fn turn(req: &Received) -> usize {
    req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "assistant")
        .count()
}

/// The last tool result of the conversation.
fn last_tool_result(req: &Received) -> String {
    req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rfind(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// Each agent reads a file, writes an artifact quoting it, then answers.
fn agent_turns(req: &Received, _: usize) -> Reply {
    let name = if goal(req).contains("alpha") {
        "alpha"
    } else {
        "beta"
    };
    let file = if name == "alpha" {
        "src/lib.rs"
    } else {
        "notes.txt"
    };
    let read_args = json!({"path": file}).to_string();
    let events = match turn(req) {
        0 => script::chat(
            &["Reading ", file],
            &[("call_r", "read_file", &[&read_args[..5], &read_args[5..]])],
            Some((100, 20)),
        ),
        1 => {
            let expected = if name == "alpha" {
                "pub fn answer"
            } else {
                "beta notes"
            };
            let content = format!(
                "{name} read it: {}",
                last_tool_result(req).contains(expected)
            );
            let args =
                json!({"path": format!("artifacts/{name}.md"), "content": content}).to_string();
            let (a, b) = args.split_at(args.len() / 2);
            script::chat(&[], &[("call_w", "write_file", &[a, b])], Some((150, 30)))
        }
        _ => script::chat(
            &["Done: wrote artifacts/", name, ".md"],
            &[],
            Some((200, 10)),
        ),
    };
    Reply::sse(events)
}

fn two_agents(ws: &Workspace) {
    ws.file("notes.txt", "beta notes\n");
    ws.dir("artifacts");
    ws.agent("alpha", &agent_yaml("alpha", "[\"artifacts/**\"]", 20_000));
    ws.agent("beta", &agent_yaml("beta", "[\"artifacts/**\"]", 20_000));
}

fn live(ws: &Workspace) -> assert_cmd::Command {
    let mut cmd = ws.codex();
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OLLAMA_HOST",
        "OPENROUTER_API_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn agents_run_their_whole_loop_over_chat_completions() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = FakeServer::with(agent_turns);
    let out = live(&ws)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url))
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "alpha: summarise,beta: summarise",
        ])
        .args(["--provider", "openai-chat", "--model", "gpt-test", "-o"])
        .arg(ws.results_path())
        .assert()
        .success();
    let output = out.get_output();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains(KEY));

    let alpha = std::fs::read_to_string(ws.path("artifacts/alpha.md")).unwrap();
    assert_eq!(alpha, "alpha read it: true");
    let beta = std::fs::read_to_string(ws.path("artifacts/beta.md")).unwrap();
    assert_eq!(beta, "beta read it: true");

    let results = ws.results();
    for name in ["alpha", "beta"] {
        let report = agent_report(&results, name);
        assert_eq!(report["status"], "completed", "{report:#}");
        // What the provider reported is what was charged: 120 + 180 + 210.
        assert_eq!(report["tokens_used"], 510, "{report:#}");
        assert_eq!(
            report["final_message"],
            format!("Done: wrote artifacts/{name}.md")
        );
    }

    let received = server.received();
    assert_eq!(received.len(), 6);
    for r in &received {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.header("authorization"), Some(&*format!("Bearer {KEY}")));
        assert_eq!(r.body["model"], "gpt-test");
        assert!(
            r.body["max_completion_tokens"].is_null()
                && r.body["max_tokens"].as_u64().unwrap() <= 200
        );
    }
    let audit = ws.audit();
    let calls = of_type(&audit, "model_call");
    assert_eq!(calls.len(), 6);
    assert!(calls.iter().all(|c| c["model"] == "gpt-test"), "{calls:#?}");
    let log = std::fs::read_to_string(ws.run_dir().join("audit.jsonl")).unwrap();
    assert!(!log.contains(KEY), "the key reached the audit log");
}

#[test]
fn a_missing_key_is_an_error_naming_the_variable_before_anything_runs() {
    let ws = Workspace::new();
    two_agents(&ws);
    live(&ws)
        .args([
            "delegate",
            "alpha",
            "--goal",
            "g",
            "--provider",
            "openai",
            "--model",
            "gpt-4.1",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("OPENAI_API_KEY"));
    assert!(!ws.has_runs());
}

#[test]
fn without_a_provider_the_error_says_how_to_choose_one() {
    let ws = Workspace::new();
    two_agents(&ws);
    live(&ws)
        .args(["delegate", "alpha", "--goal", "g"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--provider").and(predicate::str::contains("--replay")));
}

#[test]
fn a_config_file_provider_with_overrides_speaks_anthropic() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = FakeServer::scripted(vec![Reply::sse(script::anthropic(
        &["All good."],
        &[],
        Some((40, 8)),
    ))]);
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        "provider = \"claude\"\nmodel = \"claude-test\"\n\n[providers.claude]\nbase_url = \"http://127.0.0.1:9\"\nwire_api = \"anthropic\"\napi_key_env = \"E2E_CLAUDE_KEY\"\nheaders = { \"x-run\" = \"e2e\" }\n",
    )
    .unwrap();
    live(&ws)
        .env("E2E_CLAUDE_KEY", KEY)
        .args(["delegate", "alpha", "--goal", "g", "-c"])
        .arg(format!("providers.claude.base_url={}", server.url))
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(report["tokens_used"], 48);
    let r = &server.received()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("x-run"), Some("e2e"));
    assert_eq!(r.body["model"], "claude-test");
}

#[test]
fn a_rejected_key_fails_the_agent_at_once_without_leaking_it() {
    let ws = Workspace::new();
    two_agents(&ws);
    let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
    let server = FakeServer::scripted(vec![Reply::status(401, &body); 4]);
    let out = live(&ws)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url))
        .args([
            "delegate",
            "alpha",
            "--goal",
            "g",
            "--provider",
            "openai",
            "--model",
            "gpt-4.1",
            "-o",
        ])
        .arg(ws.results_path())
        .assert()
        .code(1);
    let output = out.get_output();
    assert!(!String::from_utf8_lossy(&output.stdout).contains(KEY));
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["restarts"], 0);
    assert!(
        report["error"].as_str().unwrap().contains("OPENAI_API_KEY"),
        "{report:#}"
    );
    assert!(!report.to_string().contains(KEY));
    assert_eq!(server.received().len(), 1, "a fatal error is not retried");
    assert_eq!(server.received()[0].path, "/v1/responses");
}

#[test]
fn an_unknown_config_key_is_reported() {
    let ws = Workspace::new();
    two_agents(&ws);
    live(&ws)
        .args([
            "delegate",
            "alpha",
            "--goal",
            "g",
            "-c",
            "providers.x.base_ur=http://a",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("base_ur"));
}

#[test]
fn a_recorded_live_run_replays_with_the_same_results() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = FakeServer::with(agent_turns);
    let recording = ws.path("recorded.yaml");
    live(&ws)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url))
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "alpha: summarise,beta: summarise",
        ])
        .args([
            "--provider",
            "openai-chat",
            "--model",
            "gpt-test",
            "--record",
        ])
        .arg(&recording)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stderr(predicate::str::contains("Recorded 6 model turns"));
    let live_results = ws.results();
    let script = std::fs::read_to_string(&recording).unwrap();
    assert!(!script.contains(KEY));
    std::fs::remove_dir_all(ws.path("artifacts")).unwrap();
    std::fs::create_dir(ws.path("artifacts")).unwrap();

    // No server and no key now: the run comes from the recording alone.
    drop(server);
    live(&ws)
        .args([
            "delegate-parallel",
            "alpha,beta",
            "--goals",
            "alpha: summarise,beta: summarise",
            "--replay",
        ])
        .arg(&recording)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let replayed = ws.results();
    for name in ["alpha", "beta"] {
        let (a, b) = (
            agent_report(&live_results, name),
            agent_report(&replayed, name),
        );
        for key in ["status", "tokens_used", "artifacts", "final_message"] {
            assert_eq!(a[key], b[key], "{name}.{key}");
        }
    }
    let alpha = std::fs::read_to_string(ws.path("artifacts/alpha.md")).unwrap();
    assert_eq!(alpha, "alpha read it: true");
}

#[test]
fn a_recording_into_a_missing_directory_is_refused_before_anything_runs() {
    let ws = Workspace::new();
    two_agents(&ws);
    live(&ws)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .args([
            "delegate",
            "alpha",
            "--goal",
            "g",
            "--provider",
            "openai-chat",
        ])
        .args(["--model", "gpt-test", "--record"])
        .arg(ws.path("no/such/dir/rec.yaml"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--record").and(predicate::str::contains("does not exist")),
        );
    assert!(!ws.has_runs());
}

// --- Failing, silent and slow providers --------------------------------------------------

/// A config file with one Chat Completions provider `local` at `base_url`, and `extra`
/// settings for it.
fn local_provider(ws: &Workspace, base_url: &str, extra: &str) {
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        format!(
            "provider = \"local\"\nmodel = \"smollm2\"\n\n[providers.local]\nbase_url = \"{base_url}\"\nwire_api = \"chat\"\n{extra}\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_provider_nobody_listens_for_fails_the_agent_at_once_naming_the_address() {
    let ws = Workspace::new();
    two_agents(&ws);
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/v1");
    local_provider(&ws, &url, "");
    live(&ws)
        .args(["delegate", "alpha", "--goal", "g", "-o"])
        .arg(ws.results_path())
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(1);
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(report["status"], "failed", "{report:#}");
    assert_eq!(report["restarts"], 0, "not restarted: {report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("127.0.0.1:{port}"))
            && error.contains("could not connect")
            && error.contains("after 3 tries")
            && error.contains("is the server running"),
        "{error}"
    );
}

/// A server that accepts connections and never answers; it lives as long as the value.
struct SilentServer {
    url: String,
    _listener: std::thread::JoinHandle<()>,
}

fn silent_server() -> SilentServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // read nothing, answer nothing
        }
    });
    SilentServer {
        url,
        _listener: handle,
    }
}

#[test]
fn a_provider_that_never_answers_fails_each_attempt_after_the_first_byte_timeout() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = silent_server();
    local_provider(
        &ws,
        &server.url,
        "first_byte_timeout_secs = 1\nmax_retries = 0",
    );
    live(&ws)
        .args(["delegate", "alpha", "--goal", "g", "-o"])
        .arg(ws.results_path())
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .code(1);
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(report["status"], "failed", "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("sent no answer within 1 s (first_byte_timeout_secs"),
        "{error}"
    );
    // Every attempt ended on its own, well before the 600 s request timeout.
    assert_eq!(report["restarts"], 3, "{report:#}");
    assert!(
        report["duration_secs"].as_f64().unwrap() < 60.0,
        "{report:#}"
    );
}

/// The retry delays a run logged (`retrying in 612.3ms: ...`), in order.
fn retry_delays(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.split("retrying in ").nth(1))
        .filter_map(|rest| rest.split(':').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn two_processes_retry_a_failing_provider_after_different_delays() {
    // LiteLLM's answer when its backend is down, captured from the real proxy.
    let dead = r#"{"error":{"message":"litellm.InternalServerError: InternalServerError: OpenAIException - Connection error.","type":"internal_server_error","param":null,"code":"500"}}"#;
    let server = FakeServer::with(move |_, _| Reply::status(500, dead));
    let spawn = |ws: &Workspace| {
        two_agents(ws);
        local_provider(ws, &format!("{}/v1", server.url), "max_retries = 1");
        ws.codex_std()
            .env("CODEX_LOG", "warn")
            .args(["delegate", "alpha", "--goal", "g"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ws1, ws2) = (Workspace::new(), Workspace::new());
    let (one, two) = (spawn(&ws1), spawn(&ws2));
    let (one, two) = (
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    );
    let (d1, d2) = (retry_delays(&one.stderr), retry_delays(&two.stderr));
    assert!(
        d1.len() >= 2 && d2.len() >= 2,
        "{d1:?} {d2:?}\n{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert_ne!(d1, d2, "both processes retried after the same delays");
    // Within a process too, each attempt (one retry each) draws its own jitter.
    assert_ne!(d1[0], d1[1], "{d1:?}");
    let stderr = String::from_utf8_lossy(&one.stderr);
    assert!(stderr.contains("litellm.InternalServerError"), "{stderr}");
}

// --- Truncation ------------------------------------------------------------------------

/// Every answer is text cut off by the output cap (`finish_reason: length`).
fn cut_answers(req: &Received, _: usize) -> Reply {
    let part = format!("part {} ", turn(req) + 1);
    let cap = req.body["max_tokens"].as_u64().unwrap();
    let mut events = vec![script::data(
        json!({"choices":[{"index":0,"delta":{"role":"assistant","content":part},"finish_reason":null}]}),
    )];
    events.push(script::data(
        json!({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}),
    ));
    events.push(script::data(
        json!({"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":cap}}),
    ));
    events.push("data: [DONE]\n\n".to_owned());
    Reply::sse(events)
}

#[test]
fn an_answer_cut_off_by_the_output_cap_is_continued_then_reported_truncated() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = FakeServer::with(cut_answers);
    local_provider(&ws, &format!("{}/v1", server.url), "");
    let out = live(&ws)
        .args(["delegate", "alpha", "--goal", "g", "-o"])
        .arg(ws.results_path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();

    // Told twice to continue, it ends with all it wrote, flagged as cut off.
    let received = server.received();
    assert_eq!(received.len(), 3);
    let told = last_user_message(&received[1]);
    assert!(told.contains("cut off by the output limit"), "{told}");
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["truncated"], true, "{report:#}");
    assert_eq!(report["final_message"], "part 1 part 2 part 3 ");
    assert!(stdout.contains("cut off by the output cap"), "{stdout}");
    assert!(
        stdout.contains("Truncated: the answer of alpha"),
        "{stdout}"
    );

    let audit = ws.audit();
    let calls = of_type(&audit, "model_call");
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c["truncated"] == true), "{calls:#?}");
}

#[test]
fn the_json_events_say_which_turns_were_cut_off() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = FakeServer::with(cut_answers);
    local_provider(&ws, &format!("{}/v1", server.url), "");
    let out = live(&ws)
        .args(["delegate", "alpha", "--goal", "g", "--json"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let turns: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "turn_completed")
        .collect();
    assert_eq!(turns.len(), 3, "{stdout}");
    assert!(turns.iter().all(|t| t["truncated"] == true), "{turns:#?}");
}

#[test]
fn an_answer_that_ends_normally_is_not_flagged() {
    let ws = Workspace::new();
    two_agents(&ws);
    let server = FakeServer::scripted(vec![Reply::sse(script::chat(
        &["All done."],
        &[],
        Some((40, 8)),
    ))]);
    local_provider(&ws, &format!("{}/v1", server.url), "");
    live(&ws)
        .args(["delegate", "alpha", "--goal", "g", "-o"])
        .arg(ws.results_path())
        .assert()
        .success();
    let report = agent_report(&ws.results(), "alpha").clone();
    assert!(report.get("truncated").is_none(), "{report:#}");
    let audit = ws.audit();
    assert!(of_type(&audit, "model_call")[0].get("truncated").is_none());
}

/// The text of the conversation's last user message.
fn last_user_message(req: &Received) -> String {
    req.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rfind(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_web_server_that_is_not_a_model_server_fails_at_once_without_its_html() {
    let ws = Workspace::new();
    two_agents(&ws);
    // What Python's `http.server` answers a POST with.
    let page = "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n        <title>Error response</title>\n    </head>\n    <body>\n        <h1>Error response</h1>\n        <p>Error code: 501</p>\n        <p>Message: Unsupported method ('POST').</p>\n    </body>\n</html>\n";
    let server = FakeServer::with(move |_, _| {
        let mut reply = Reply::status(501, page);
        reply.headers = vec![("content-type".into(), "text/html;charset=utf-8".into())];
        reply
    });
    local_provider(&ws, &format!("{}/v1", server.url), "");
    let out = live(&ws)
        .args(["delegate", "alpha", "--goal", "g", "-o"])
        .arg(ws.results_path())
        .assert()
        .code(1);
    assert_eq!(server.received().len(), 1, "a 501 is not retried");
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(report["restarts"], 0, "{report:#}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 501")
            && error.contains("title \"Error response\"")
            && error.contains("is this the right base URL?"),
        "{error}"
    );
    let output = out.get_output();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !printed.contains("<html") && !printed.contains("<p>"),
        "{printed}"
    );
}

// --- The README's recipe for local servers ------------------------------------------------

/// The `toml` blocks of README's "Local servers" section, in order.
fn recipe_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### Local servers")
        .nth(1)
        .expect("README has a Local servers section");
    let section = section.split("\n## ").next().unwrap();
    section
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

/// A captured exchange's response body, by its source (`file#line`).
fn captured(source: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/real-servers/exchanges.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("the captured exchanges");
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|x| x["source"] == source)
        .and_then(|x| x["resp"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no exchange {source}"))
}

/// A server answering each protocol's path with what a real server sent there.
fn replaying_server(chat: &str, responses: &str, messages: &str) -> FakeServer {
    let (chat, responses, messages) = (captured(chat), captured(responses), captured(messages));
    FakeServer::with(move |req, _| {
        let body = match req.path.as_str() {
            "/v1/chat/completions" => &chat,
            "/v1/responses" => &responses,
            "/v1/messages" => &messages,
            other => return Reply::status(404, &format!("{{\"detail\":\"no {other}\"}}")),
        };
        Reply::sse(vec![body.clone()])
    })
}

#[test]
fn the_readme_recipe_for_llama_cpp_runs_on_all_three_protocols() {
    let blocks = recipe_blocks();
    let llama = blocks
        .iter()
        .find(|b| b.contains("[providers.llama]"))
        .expect("a llama.cpp block");
    let server = replaying_server(
        "llama-server.jsonl#4",
        "llama-server.jsonl#16",
        "llama-server.jsonl#19",
    );
    let cases = [
        ("llama", None, "Your answer is your final report.", 74),
        (
            "llama",
            Some("providers.llama.wire_api=responses"),
            "Once you're done with the report, you will not return to your own editor.",
            84,
        ),
        ("llama-anthropic", None, "The final report.", 71),
    ];
    for (provider, setting, text, tokens) in cases {
        let ws = Workspace::new();
        two_agents(&ws);
        let config = llama.replace("http://127.0.0.1:8080", &server.url);
        std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
        let mut cmd = live(&ws);
        cmd.args(["delegate", "alpha", "--goal", "g", "--provider", provider])
            .args(["--model", "local", "-o"])
            .arg(ws.results_path());
        if let Some(s) = setting {
            cmd.args(["-c", s]);
        }
        cmd.assert().success();
        let report = agent_report(&ws.results(), "alpha").clone();
        assert_eq!(report["final_message"], text, "{provider} {setting:?}");
        assert_eq!(report["tokens_used"], tokens, "{provider} {setting:?}");
    }
    let paths: Vec<String> = server.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/v1/chat/completions", "/v1/responses", "/v1/messages"]
    );
}

#[test]
fn the_readme_recipe_for_litellm_sends_the_key_and_reads_its_streams() {
    let blocks = recipe_blocks();
    let litellm = blocks
        .iter()
        .find(|b| b.contains("[providers.litellm]"))
        .expect("a LiteLLM block");
    let server = replaying_server(
        "litellm-proxy.jsonl#0",
        "litellm-proxy.jsonl#1",
        "litellm-proxy.jsonl#2",
    );
    let ws = Workspace::new();
    two_agents(&ws);
    let config = litellm.replace("http://127.0.0.1:4000", &server.url);
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
    live(&ws)
        .env("LITELLM_API_KEY", KEY)
        .args(["delegate", "alpha", "--goal", "g", "--provider", "litellm"])
        .args(["--model", "smollm2", "-o"])
        .arg(ws.results_path())
        .assert()
        .success();
    let report = agent_report(&ws.results(), "alpha").clone();
    assert_eq!(
        report["final_message"],
        "The final report is your final report."
    );
    assert_eq!(report["tokens_used"], 75);
    let r = &server.received()[0];
    assert_eq!(r.header("authorization"), Some(&*format!("Bearer {KEY}")));
    assert_eq!(r.body["model"], "smollm2");
}

//! `codex mcp-server` driven by an MCP client of its own (rmcp, child-process transport):
//! the server runs in a temporary workspace with a replay script; the tests list its tools,
//! check their schemas, call them, and check the results, the progress notifications, the
//! audit log and the server-wide budget.

mod common;

use std::sync::{Arc, Mutex};

use common::{agent_report, agent_yaml, of_type, Workspace};
use predicates::prelude::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};

/// A client that keeps the progress messages it is sent.
#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let message = params.message.unwrap_or_default();
        self.progress.lock().unwrap().push(message);
    }
}

/// A workspace with agents `alpha` and `beta` and a script where each lists the workspace
/// and then answers.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.agent("beta", &agent_yaml("beta", "false", 20_000));
    ws.replay(
        r#"
agents:
  default:
    turns:
      - text: "Looking around."
        tool_calls: [{name: list_dir, arguments: {}}]
        usage: {input_tokens: 300, output_tokens: 20}
      - text: "Done."
        usage: {input_tokens: 400, output_tokens: 10}
"#,
    );
    ws
}

/// `codex mcp-server --replay <ws>/replay.yaml` with `extra` flags, connected.
async fn connect(ws: &Workspace, extra: &[&str]) -> (RunningService<RoleClient, Client>, Client) {
    let (service, client, _) = connect_with_pid(ws, extra).await;
    (service, client)
}

/// [`connect`], and the server's process id (to send it signals).
async fn connect_with_pid(
    ws: &Workspace,
    extra: &[&str],
) -> (RunningService<RoleClient, Client>, Client, u32) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_codex"));
    cmd.env("CODEX_HOME", ws.home())
        .env_remove("CODEX_LOG")
        .current_dir(ws.root())
        .arg("-C")
        .arg(ws.root())
        .arg("mcp-server")
        .arg("--replay")
        .arg(ws.path("replay.yaml"))
        .args(extra);
    let transport = TokioChildProcess::new(cmd).expect("spawn codex mcp-server");
    let pid = transport.id().expect("the server's pid");
    let client = Client::default();
    let service = client
        .clone()
        .serve(transport)
        .await
        .expect("MCP handshake");
    (service, client, pid)
}

fn call(name: &'static str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone())
}

/// Calls a tool with a progress token and waits for its result.
async fn call_with_progress(
    service: &RunningService<RoleClient, Client>,
    params: CallToolRequestParams,
) -> CallToolResult {
    let handle = service
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("request sent");
    match handle.await_response().await.expect("a response") {
        ServerResult::CallToolResult(r) => r,
        other => panic!("not a tool result: {other:?}"),
    }
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The input schema of tool `name`, and its required fields.
fn schema_of(tools: &[rmcp::model::Tool], name: &str) -> (Value, Vec<String>) {
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool `{name}`"));
    let schema = Value::Object((*tool.input_schema).clone());
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (schema, required)
}

#[tokio::test]
async fn tools_are_listed_with_schemas_from_the_request_types() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let tools = service.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for n in ["delegate", "delegate_parallel", "list_agents"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let delegate = tools.iter().find(|t| t.name == "delegate").unwrap();
    let schema = Value::Object((*delegate.input_schema).clone());
    let props = &schema["properties"];
    for field in ["agent", "goal", "scope", "budget", "deadline"] {
        assert!(props.get(field).is_some(), "no `{field}` in {schema:#}");
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["agent", "goal"]);
    let parallel = tools
        .iter()
        .find(|t| t.name == "delegate_parallel")
        .unwrap();
    let schema = Value::Object((*parallel.input_schema).clone());
    assert_eq!(schema["properties"]["tasks"]["type"], "array", "{schema:#}");

    let listed = service
        .call_tool(CallToolRequestParams::new("list_agents"))
        .await
        .unwrap();
    let agents = &listed.structured_content.unwrap()["agents"];
    let names: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"alpha") && names.contains(&"code-reviewer"),
        "{names:?}"
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn delegate_runs_one_agent_and_reports_progress() {
    let ws = workspace();
    let (service, client) = connect(&ws, &[]).await;
    let args = json!({"agent": "alpha", "goal": "look around", "budget": 5000});
    let result = call_with_progress(&service, call("delegate", args)).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let report = result.structured_content.clone().unwrap();
    assert_eq!(report["agent"], "alpha");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["goal"], "look around");
    assert_eq!(report["budget"], 5000);
    assert_eq!(report["tokens_used"], 730);
    assert_eq!(report["final_message"], "Done.");
    assert!(
        text(&result).contains("1/1 agents completed"),
        "{}",
        text(&result)
    );

    let progress = client.progress.lock().unwrap().clone();
    assert!(
        progress.iter().any(|m| m == "alpha: started (attempt 1)"),
        "{progress:?}"
    );
    assert!(
        progress.iter().any(|m| m == "alpha: 730 tokens used"),
        "{progress:?}"
    );
    assert!(
        progress
            .iter()
            .any(|m| m == "alpha: finished, completed (730 tokens)"),
        "{progress:?}"
    );
    // The same audit log as a CLI run.
    let audit = ws.audit();
    assert_eq!(audit.first().unwrap()["type"], "run_started");
    assert_eq!(audit.last().unwrap()["type"], "run_finished");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn delegate_parallel_returns_the_run_report() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"tasks": [
        {"agent": "alpha", "goal": "one"},
        {"agent": "beta", "goal": "two", "budget": 4000, "deadline": "2m"}
    ]});
    let result = service
        .call_tool(call("delegate_parallel", args))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let report = result.structured_content.clone().unwrap();
    assert_eq!(report["success_count"], 2);
    assert_eq!(report["total_count"], 2);
    assert_eq!(report["total_tokens"], 1460);
    assert_eq!(report["agents"][1]["agent"], "beta");
    assert_eq!(report["agents"][1]["budget"], 4000);
    assert!(report["run_id"].as_str().is_some());
    assert!(
        text(&result).contains("2/2 agents completed"),
        "{}",
        text(&result)
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn the_server_budget_clamps_every_call_to_what_is_left() {
    let ws = workspace();
    let (service, _) = connect(&ws, &["--budget", "20500"]).await;
    let args = json!({"agent": "alpha", "goal": "look around"});
    let first = service
        .call_tool(call("delegate", args.clone()))
        .await
        .unwrap();
    let report = first.structured_content.clone().unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["tokens_used"], 730);
    assert!(
        text(&first).contains("Tokens: 730 / 20,000"),
        "{}",
        text(&first)
    );
    // 19,770 tokens left: the second run gets them as its budget, though the agent asks
    // for 20,000.
    let second = service.call_tool(call("delegate", args)).await.unwrap();
    assert!(
        text(&second).contains("Tokens: 730 / 19,770"),
        "{}",
        text(&second)
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn an_unknown_agent_is_a_tool_error_that_says_so() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"agent": "nobody", "goal": "x"});
    let result = service.call_tool(call("delegate", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("nobody"), "{}", text(&result));
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_call_cancels_its_agents() {
    let ws = Workspace::new();
    ws.agent("slow", &agent_yaml("slow", "false", 20_000));
    ws.replay("agents:\n  default:\n    turns:\n      - text: \"late\"\n        delay_ms: 60000\n");
    let (service, client) = connect(&ws, &[]).await;
    let args = json!({"agent": "slow", "goal": "wait"});
    let handle = service
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(call("delegate", args))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Cancel once the agent has started.
    for _ in 0..200 {
        if !client.progress.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    handle.cancel(Some("test".into())).await.unwrap();
    // The run ends (long before the model's 60 s) and its log says the agent was cancelled.
    let mut finished = None;
    for _ in 0..400 {
        if ws.has_runs() {
            let audit = ws.audit();
            if let Some(f) = audit.iter().find(|r| r["type"] == "agent_finished") {
                finished = Some(f.clone());
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let finished = finished.expect("the agent finished after the cancellation");
    assert_eq!(finished["status"], "cancelled", "{finished:#}");
    service.cancel().await.unwrap();
}

/// `codex mcp-server` as an agent's MCP server runs outside the OS sandbox (it writes its
/// audit logs under `.codex/` and sandboxes its own agents' programs).
const CODEX_OPTS_OUT: &str =
    "sandbox = false\nsandbox_reason = \"codex sandboxes its own agents' programs\"\n";

/// The MCP client side: an agent whose definition lists `inner.*` calls the tools of an MCP
/// server configured in `codex-actors.toml` (here `codex mcp-server` itself, with only
/// `list_agents` enabled); each call is decided by the policy and audited.
#[test]
fn an_agent_calls_the_tools_of_a_configured_mcp_server() {
    let ws = Workspace::new();
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"inner.*\"]\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    ws.agent("helper", &agent_yaml("helper", "false", 5_000));
    let config = format!(
        "[mcp_servers.inner]\ncommand = {:?}\nargs = [\"-C\", {:?}, \"mcp-server\"]\nenabled_tools = [\"list_agents\"]\n{CODEX_OPTS_OUT}",
        env!("CARGO_BIN_EXE_codex"),
        ws.root().display().to_string(),
    );
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
    let replay = ws.replay(
        r#"
agents:
  caller:
    turns:
      - text: "Which agents are there?"
        tool_calls: [{name: inner__list_agents, arguments: {}}]
      - text: "Delegate, then."
        tool_calls: [{name: inner__delegate, arguments: {agent: helper, goal: x}}]
      - text: "Done."
"#,
    );
    ws.codex()
        .args(["delegate", "caller", "--goal", "ask", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success()
        .stdout(predicate::str::contains("1/1 agents completed"));
    let results = ws.results();
    assert_eq!(agent_report(&results, "caller")["final_message"], "Done.");
    let audit = ws.audit();
    let decision = of_type(&audit, "policy_decision")
        .into_iter()
        .find(|r| r["access"]["kind"] == "mcp")
        .expect("a policy decision on the MCP call");
    assert_eq!(decision["access"]["target"], "inner.list_agents");
    assert_eq!(decision["allowed"], true, "{decision:#}");
    let calls = of_type(&audit, "tool_call");
    let listed = calls
        .iter()
        .find(|r| r["tool"] == "inner__list_agents")
        .expect("the MCP tool call is audited");
    assert_eq!(listed["outcome"], "ok", "{listed:#}");
    // Its answer (the inner server's agent list, as JSON text) went back to the model.
    assert!(listed["output_bytes"].as_u64().unwrap() > 50, "{listed:#}");
    // `delegate` is not enabled: the model was never offered it.
    let refused = calls
        .iter()
        .find(|r| r["tool"] == "inner__delegate")
        .unwrap();
    assert_eq!(refused["outcome"], "error", "{refused:#}");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("unknown tool `inner__delegate`") && why.contains("inner__list_agents"),
        "{why}"
    );
}

/// The test suite's external MCP server: `examples/echo_mcp_server.rs` (built with the
/// tests, like every example).
fn echo_server(ws: &Workspace) {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_codex"))
        .parent()
        .unwrap()
        .join("examples/echo_mcp_server");
    assert!(
        exe.exists(),
        "{} is missing: cargo build --examples",
        exe.display()
    );
    let config = format!(
        "[mcp_servers.echo]\ncommand = {:?}\n",
        exe.display().to_string()
    );
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
}

/// `caller` may use every tool of the echo server; `replay` is its script.
fn echo_caller(ws: &Workspace, turns: &str) -> std::path::PathBuf {
    echo_server(ws);
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"echo.*\"]\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    ws.agent("other", "name: other\ngoal: work\ninstructions: i\n");
    ws.replay(&format!(
        "agents:\n  caller:\n    turns:\n{turns}  other:\n    turns:\n      - text: \"other done\"\n"
    ))
}

#[test]
fn an_agent_uses_a_tool_of_an_external_mcp_server() {
    let ws = Workspace::new();
    let replay = echo_caller(
        &ws,
        "      - tool_calls: [{name: echo__echo, arguments: {text: hello}}]\n      - text: Done.\n",
    );
    ws.codex()
        .args(["delegate", "caller", "--goal", "ask", "--replay"])
        .arg(&replay)
        .assert()
        .success();
    let audit = ws.audit();
    let decision = of_type(&audit, "policy_decision")
        .into_iter()
        .find(|r| r["access"]["kind"] == "mcp")
        .expect("the call was decided by the policy");
    assert_eq!(
        (&decision["access"]["target"], &decision["allowed"]),
        (&json!("echo.echo"), &json!(true))
    );
    let call = of_type(&audit, "tool_call")[0];
    assert_eq!(
        (&call["tool"], &call["outcome"]),
        (&json!("echo__echo"), &json!("ok"))
    );
    assert_eq!(call["output_bytes"], "echo: hello".len());
}

#[test]
fn an_mcp_server_that_dies_mid_run_is_an_error_for_the_calls_after_it() {
    let ws = Workspace::new();
    let replay = echo_caller(
        &ws,
        "      - tool_calls: [{name: echo__echo, arguments: {text: before}}]\n\
         \x20     - tool_calls: [{name: echo__exit, arguments: {}}]\n\
         \x20     - tool_calls: [{name: echo__echo, arguments: {text: after}}]\n\
         \x20     - text: Done without echo.\n",
    );
    ws.codex()
        .args([
            "delegate-parallel",
            "caller,other",
            "--goals",
            "ask,work",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let results = ws.results();
    assert_eq!(agent_report(&results, "caller")["status"], "completed");
    assert_eq!(agent_report(&results, "other")["status"], "completed");
    let outcomes: Vec<(String, String)> = of_type(&ws.audit(), "tool_call")
        .into_iter()
        .map(|r| {
            let error = r["error"].as_str().unwrap_or("").to_owned();
            (r["outcome"].as_str().unwrap().to_owned(), error)
        })
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].0, "ok");
    for (outcome, error) in &outcomes[1..] {
        assert_eq!(outcome, "error");
        assert!(error.contains("echo."), "the error names the tool: {error}");
    }
}

#[test]
fn an_mcp_server_that_is_not_configured_stops_the_run_before_it_starts() {
    let ws = Workspace::new();
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"gone.*\"]\n",
    );
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: \"x\"\n");
    ws.codex()
        .args(["delegate", "caller", "--goal", "ask", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no [mcp_servers.gone]"));
    assert!(!ws.has_runs());
}

#[test]
fn an_mcp_server_that_does_not_start_fails_only_the_agents_that_need_it() {
    let ws = Workspace::new();
    ws.agent(
        "caller",
        "name: caller\ngoal: ask\ninstructions: i\ntools:\n  mcp: [\"gone.*\"]\n",
    );
    ws.agent("other", "name: other\ngoal: work\ninstructions: i\n");
    std::fs::write(
        ws.home().join("codex-actors.toml"),
        "[mcp_servers.gone]\ncommand = \"/nonexistent/mcp-server\"\n",
    )
    .unwrap();
    let replay = ws.replay("agents:\n  default:\n    turns:\n      - text: \"done\"\n");
    ws.codex()
        .args([
            "delegate-parallel",
            "caller,other",
            "--goals",
            "ask,work",
            "--replay",
        ])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .code(1);
    let results = ws.results();
    let caller = agent_report(&results, "caller");
    assert_eq!(caller["status"], "failed");
    let why = caller["error"].as_str().unwrap();
    assert!(
        why.contains("MCP server `gone`") && why.contains("did not start"),
        "{why}"
    );
    assert!(why.contains("/nonexistent/mcp-server"), "{why}");
    assert_eq!(agent_report(&results, "other")["status"], "completed");
    let audit = ws.audit();
    let finished = of_type(&audit, "agent_finished");
    assert!(finished
        .iter()
        .any(|r| r["agent_name"] == "caller" && r["status"] == "failed"));
}

/// Recursive delegation through MCP: `codex mcp-server` configured as an MCP server, so an
/// agent's `codex__delegate` call runs another agent in a sub-run (with its own audit log,
/// capped by that server's `--budget`). `CODEX_MCP_DEPTH` bounds the nesting.
#[test]
fn an_agent_delegates_to_another_agent_through_codex_mcp_server() {
    let ws = Workspace::new();
    ws.agent(
        "boss",
        "name: boss\ngoal: lead\ninstructions: i\ntools:\n  mcp: [\"codex.delegate\"]\n",
    );
    ws.agent("worker", &agent_yaml("worker", "false", 5_000));
    let replay = ws.replay(
        r#"
agents:
  boss:
    turns:
      - text: "Asking the worker."
        tool_calls: [{name: codex__delegate, arguments: {agent: worker, goal: "do the sub-task"}}]
      - text: "Boss done."
  worker:
    turns:
      - text: "sub-task done"
        usage: {input_tokens: 100, output_tokens: 10}
"#,
    );
    let config = format!(
        "[mcp_servers.codex]\ncommand = {:?}\nargs = [\"-C\", {:?}, \"mcp-server\", \"--replay\", {:?}, \"--budget\", \"3000\"]\n{CODEX_OPTS_OUT}",
        env!("CARGO_BIN_EXE_codex"),
        ws.root().display().to_string(),
        replay.display().to_string(),
    );
    std::fs::write(ws.home().join("codex-actors.toml"), config).unwrap();
    ws.codex()
        .args(["delegate", "boss", "--goal", "lead", "--replay"])
        .arg(&replay)
        .assert()
        .success()
        .stdout(predicate::str::contains("1/1 agents completed"));
    // Two runs: the boss's and the worker's sub-run, each with its own complete log.
    let runs: Vec<_> = std::fs::read_dir(ws.path(".codex/runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("audit.jsonl"))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let logs: Vec<String> = runs
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let sub = logs
        .iter()
        .find(|l| l.contains("\"agent_name\":\"worker\""))
        .unwrap();
    assert!(sub.contains("\"status\":\"completed\""), "{sub}");
    assert!(sub.contains("\"tokens_used\":110"), "{sub}");
    assert!(sub.contains("\"goal\":\"do the sub-task\""), "{sub}");
    let top = logs
        .iter()
        .find(|l| l.contains("\"agent_name\":\"boss\""))
        .unwrap();
    assert!(top.contains("\"target\":\"codex.delegate\""), "{top}");
    let call = top
        .lines()
        .find(|l| l.contains("\"type\":\"tool_call\""))
        .unwrap();
    assert!(call.contains("\"outcome\":\"ok\""), "{call}");

    // At the depth limit, no MCP server is started.
    ws.codex()
        .env("CODEX_MCP_DEPTH", "3")
        .args(["delegate", "boss", "--goal", "lead", "--replay"])
        .arg(&replay)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("levels below the first codex"));
}

#[tokio::test]
async fn create_agent_and_the_workspace_tools_are_listed_with_their_required_fields() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let tools = service.list_all_tools().await.unwrap();
    let expected: [(&str, &[&str], &[&str]); 4] = [
        ("create_agent", &["prompt"], &["budget", "name", "save"]),
        ("read_file", &["path"], &["offset", "limit"]),
        ("grep", &["pattern"], &["path", "include"]),
        ("codebase_search", &["query"], &["path", "limit"]),
    ];
    for (name, required_fields, optional) in expected {
        let (schema, required) = schema_of(&tools, name);
        assert_eq!(required, required_fields, "{name}: {schema:#}");
        for field in required_fields.iter().chain(optional) {
            assert!(
                schema["properties"].get(field).is_some(),
                "{name}: no `{field}` in {schema:#}"
            );
        }
    }
    let (read, _) = schema_of(&tools, "read_file");
    assert_eq!(read["properties"]["offset"]["minimum"], 1, "{read:#}");
    // The workspace tools say they only read.
    for name in ["read_file", "grep", "codebase_search"] {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let hints = tool.annotations.as_ref().expect("annotations");
        assert_eq!(hints.read_only_hint, Some(true), "{name}");
    }
    service.cancel().await.unwrap();
}

/// A valid definition, as the `agent-create` turn of a replay script answers it.
const DOC_WRITER: &str = "name: doc-writer\ngoal: Describe the crate\ninstructions: Read the sources and describe them.\ntools:\n  fs: { read: true }\nbudget: 9000\nmax_output_tokens: 200\n";

/// A workspace whose replay script writes `answers` (one per generation call) and then
/// plays the new agent's run (110 tokens).
fn creating_workspace(answers: &[&str]) -> Workspace {
    let ws = Workspace::new();
    let turns: String = answers
        .iter()
        .map(|a| {
            let body: String = a.lines().map(|l| format!("          {l}\n")).collect();
            format!(
                "      - text: |\n{body}        usage: {{input_tokens: 500, output_tokens: 80}}\n"
            )
        })
        .collect();
    ws.replay(&format!(
        "agents:\n  agent-create:\n    turns:\n{turns}  default:\n    turns:\n      - text: \"The crate answers 42.\"\n        usage: {{input_tokens: 100, output_tokens: 10}}\n"
    ));
    ws
}

#[tokio::test]
async fn create_agent_returns_the_definition_and_the_report_of_its_run() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "an agent that documents the crate"});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let created = result.structured_content.clone().unwrap();
    assert_eq!(created["name"], "doc-writer");
    let definition = created["definition"].as_str().unwrap();
    assert!(
        definition.contains("goal: Describe the crate"),
        "{definition}"
    );
    assert_eq!(created["saved"], Value::Null);
    let report = &created["report"];
    assert_eq!(report["agent"], "doc-writer");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["budget"], 9000);
    assert_eq!(report["tokens_used"], 110);
    assert_eq!(report["final_message"], "The crate answers 42.");
    assert!(
        text(&result).contains("Created agent `doc-writer`"),
        "{}",
        text(&result)
    );
    // Not saved; run like any other agent, with an audit log.
    assert!(!ws.path(".codex/agents/doc-writer.yaml").exists());
    let audit = ws.audit();
    let finished = of_type(&audit, "agent_finished");
    assert_eq!(finished[0]["agent_name"], "doc-writer");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_with_save_writes_the_definition_file() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "documents the crate", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let created = result.structured_content.clone().unwrap();
    assert_eq!(created["saved"], ".codex/agents/doc-writer.yaml");
    let saved = std::fs::read_to_string(ws.path(".codex/agents/doc-writer.yaml")).unwrap();
    assert_eq!(saved, created["definition"].as_str().unwrap());
    // The saved definition is one the server can delegate to.
    let listed = service
        .call_tool(CallToolRequestParams::new("list_agents"))
        .await
        .unwrap();
    assert!(
        text(&listed).lines().any(|l| l == "doc-writer"),
        "{}",
        text(&listed)
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_still_invalid_after_the_retries_is_an_error_and_nothing_is_saved() {
    let bad = "name: Not A Name\ngoal: g\ninstructions: i\n";
    let ws = creating_workspace(&[bad, bad, bad]);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "anything", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("no valid agent definition in 3 tries"),
        "{message}"
    );
    assert!(message.contains("nothing was saved or run"), "{message}");
    assert!(!ws.path(".codex/agents/not-a-name.yaml").exists());
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_never_replaces_an_existing_file() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let mine = agent_yaml("doc-writer", "false", 1000);
    ws.agent("doc-writer", &mine);
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"prompt": "documents the crate", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("doc-writer.yaml exists, so nothing was saved or run"),
        "{message}"
    );
    assert!(message.contains("another `name`"), "{message}");
    let kept = std::fs::read_to_string(ws.path(".codex/agents/doc-writer.yaml")).unwrap();
    assert_eq!(kept, mine);
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_charges_its_generation_and_its_run_to_the_server_budget() {
    let ws = creating_workspace(&[DOC_WRITER]);
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    let (service, _) = connect(&ws, &["--budget", "5000"]).await;
    let args = json!({"prompt": "documents the crate"});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let created = result.structured_content.clone().unwrap();
    assert_eq!(created["notes"][0], "definition written (580 tokens)");
    // The agent asks for 9,000; its run gets the 4,420 the generation left.
    assert!(
        text(&result).contains("Tokens: 110 / 4,420"),
        "{}",
        text(&result)
    );
    // What the run used is charged too: a later call gets what is left.
    let args = json!({"agent": "alpha", "goal": "anything"});
    let next = service.call_tool(call("delegate", args)).await.unwrap();
    assert!(text(&next).contains("/ 4,310"), "{}", text(&next));
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn create_agent_is_refused_when_the_server_budget_cannot_pay_for_a_definition() {
    let ws = creating_workspace(&[DOC_WRITER]);
    let (service, _) = connect(&ws, &["--budget", "800"]).await;
    let args = json!({"prompt": "documents the crate", "save": true});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("the budget has 800 tokens left, too few to write a definition"),
        "{message}"
    );
    assert!(!ws.path(".codex/agents/doc-writer.yaml").exists());
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn read_file_returns_the_lines_of_a_file() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"path": "src/lib.rs"});
    let result = service.call_tool(call("read_file", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(
        text(&result),
        "   1| pub fn answer() -> u32 {\n   2|     42\n   3| }\n"
    );
    service.cancel().await.unwrap();
}

/// Calls `read_file` on `path` and returns the error text; panics if it was not refused.
async fn refused_read(service: &RunningService<RoleClient, Client>, path: &str) -> String {
    let result = service
        .call_tool(call("read_file", json!({ "path": path })))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true), "{path}: {}", text(&result));
    text(&result)
}

#[tokio::test]
async fn read_file_refuses_a_relative_path_leading_out_of_the_workspace() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let message = refused_read(&service, "../outside").await;
    assert!(
        message.contains("`../outside` leads outside the workspace"),
        "{message}"
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn read_file_refuses_an_absolute_path_outside_the_workspace() {
    let ws = workspace();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "not for clients\n").unwrap();
    let (service, _) = connect(&ws, &[]).await;
    let message = refused_read(&service, secret.to_str().unwrap()).await;
    assert!(message.contains("leads outside the workspace"), "{message}");
    assert!(!message.contains("not for clients"), "{message}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn read_file_refuses_a_symlink_leading_out_of_the_workspace() {
    let ws = workspace();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "not for clients\n").unwrap();
    std::os::unix::fs::symlink(&secret, ws.path("link.txt")).unwrap();
    let (service, _) = connect(&ws, &[]).await;
    let message = refused_read(&service, "link.txt").await;
    assert!(
        message.contains("`link.txt` leads outside the workspace"),
        "{message}"
    );
    assert!(!message.contains("not for clients"), "{message}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn grep_finds_a_string_in_the_workspace() {
    let ws = workspace();
    ws.file("src/other.rs", "fn unrelated() {}\n");
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"pattern": "answer", "path": "src"});
    let result = service.call_tool(call("grep", args)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(text(&result), "src/lib.rs:1:pub fn answer() -> u32 {\n");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn codebase_search_returns_the_best_hit_first() {
    let ws = workspace();
    ws.file(
        "src/net.rs",
        "// networking\nfn retry_with_backoff(attempts: u32) {}\n// end\n",
    );
    ws.file("src/misc.rs", "fn retry() {}\n");
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"query": "retry backoff"});
    let result = service
        .call_tool(call("codebase_search", args))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let out = text(&result);
    let first = out.lines().next().unwrap();
    assert_eq!(first, "src/net.rs:2", "{out}");
    assert!(out.contains("fn retry_with_backoff"), "{out}");
    service.cancel().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// In real MCP clients: concurrent calls under one session budget, shutdown, schemas every
// client can fill, results a model can act on, annotations and server info.
// ---------------------------------------------------------------------------------------

/// An agent that runs `sh` until the file `go` exists in the workspace (the test's barrier:
/// its call stays in progress until the test creates the file), then answers.
const WAITER: &str = "name: waiter\ngoal: wait\ninstructions: i\ntools:\n  fs: { read: true }\n  shell: { exec: [sh] }\nbudget: 10000\nmax_output_tokens: 200\n";

/// A workspace with `waiter` (10,000 tokens, see [`WAITER`]) and `alpha` and `beta`
/// (10,000 each, list the workspace then answer, 730 tokens).
fn waiting_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.agent("waiter", WAITER);
    ws.agent("alpha", &agent_yaml("alpha", "false", 10_000));
    ws.agent("beta", &agent_yaml("beta", "false", 10_000));
    ws.replay(
        r#"
agents:
  waiter:
    turns:
      - text: "Waiting for go."
        tool_calls: [{name: shell, arguments: {argv: [sh, -c, "until [ -e go ]; do sleep 0.05; done"]}}]
        usage: {input_tokens: 300, output_tokens: 20}
      - text: "Went."
        usage: {input_tokens: 400, output_tokens: 10}
  default:
    turns:
      - text: "Looking around."
        tool_calls: [{name: list_dir, arguments: {}}]
        usage: {input_tokens: 300, output_tokens: 20}
      - text: "Done."
        usage: {input_tokens: 400, output_tokens: 10}
"#,
    );
    ws
}

/// Starts a `delegate` call of `waiter` (with a progress token) and returns once its agent
/// has started, its call still in progress (it waits for the file `go`).
async fn start_waiter(
    service: &RunningService<RoleClient, Client>,
    client: &Client,
) -> rmcp::service::RequestHandle<rmcp::RoleClient> {
    let args = json!({"agent": "waiter", "goal": "wait for go"});
    let handle = service
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(call("delegate", args))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    wait_for_progress(client, "waiter: 320 tokens used").await;
    handle
}

/// Waits (up to a minute) until the client was sent the progress message `message`.
async fn wait_for_progress(client: &Client, message: &str) {
    for _ in 0..2400 {
        if client.progress.lock().unwrap().iter().any(|m| m == message) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "no progress `{message}`: {:?}",
        client.progress.lock().unwrap()
    );
}

fn tool_result(response: ServerResult) -> CallToolResult {
    match response {
        ServerResult::CallToolResult(r) => r,
        other => panic!("not a tool result: {other:?}"),
    }
}

#[tokio::test]
async fn two_concurrent_delegates_under_the_server_budget_both_complete() {
    let ws = waiting_workspace();
    let (service, client) = connect(&ws, &["--budget", "20500"]).await;
    let waiting = start_waiter(&service, &client).await;
    // The waiter's call holds its own 10,000 tokens, not the whole session budget: a second
    // call gets its agent's full budget while the first is still running.
    let args = json!({"agent": "beta", "goal": "meanwhile"});
    let second = service.call_tool(call("delegate", args)).await.unwrap();
    assert_ne!(second.is_error, Some(true), "{}", text(&second));
    let report = second.structured_content.clone().unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["budget"], 10_000, "{report:#}");
    std::fs::write(ws.path("go"), "").unwrap();
    let first = tool_result(waiting.await_response().await.unwrap());
    assert_ne!(first.is_error, Some(true), "{}", text(&first));
    let report = first.structured_content.clone().unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["final_message"], "Went.");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn a_call_without_a_turns_worth_free_is_refused_with_the_figures_and_unspent_tokens_come_back(
) {
    let ws = waiting_workspace();
    let (service, client) = connect(&ws, &["--budget", "10100"]).await;
    let waiting = start_waiter(&service, &client).await;
    let args = json!({"agent": "alpha", "goal": "meanwhile"});
    let refused = service
        .call_tool(call("delegate", args.clone()))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    let message = text(&refused);
    assert!(
        message.contains("100 of its 10100 tokens free (0 spent, 10000 held by calls in progress)"),
        "{message}"
    );
    assert!(message.contains("needs at least"), "{message}");
    assert!(
        message.contains("when the calls in progress have ended"),
        "{message}"
    );
    std::fs::write(ws.path("go"), "").unwrap();
    let first = tool_result(waiting.await_response().await.unwrap());
    assert_eq!(first.structured_content.unwrap()["tokens_used"], 730);
    // Only the 730 tokens used were charged: the rest of the hold came back.
    let again = service.call_tool(call("delegate", args)).await.unwrap();
    let report = again.structured_content.clone().unwrap();
    assert_eq!(report["status"], "completed", "{}", text(&again));
    assert_eq!(report["budget"], 9_370, "{report:#}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn a_session_with_less_than_a_turn_left_refuses_new_runs() {
    let ws = Workspace::new();
    ws.agent("alpha", &agent_yaml("alpha", "false", 20_000));
    ws.replay(
        "agents:\n  default:\n    turns:\n      - text: \"Done.\"\n        usage: {input_tokens: 700, output_tokens: 10}\n",
    );
    // A turn of alpha needs about 1,100 tokens (its prompt and tools, and some output).
    let (service, _) = connect(&ws, &["--budget", "1500"]).await;
    let args = json!({"agent": "alpha", "goal": "look around"});
    let first = service
        .call_tool(call("delegate", args.clone()))
        .await
        .unwrap();
    let report = first.structured_content.unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["tokens_used"], 710);
    let second = service.call_tool(call("delegate", args)).await.unwrap();
    assert_eq!(second.is_error, Some(true));
    let message = text(&second);
    assert!(
        message.contains("790 of its 1500 tokens free (710 spent, 0 held"),
        "{message}"
    );
    assert!(message.contains("larger --budget"), "{message}");
    assert_eq!(
        std::fs::read_dir(ws.path(".codex/runs")).unwrap().count(),
        1
    );
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn the_reports_budget_is_the_cap_that_bound_the_run() {
    let ws = workspace();
    let (service, _) = connect(&ws, &["--budget", "5000"]).await;
    // alpha's definition asks for 20,000; the session has 5,000.
    let args = json!({"agent": "alpha", "goal": "look around"});
    let result = service.call_tool(call("delegate", args)).await.unwrap();
    let report = result.structured_content.clone().unwrap();
    assert_eq!(report["budget"], 5000, "{report:#}");
    assert!(text(&result).contains("alpha: completed (730/5,000 tokens)"));
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn a_run_where_no_agent_completed_is_an_error_that_says_why() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    // The first turn uses 320 tokens of a 256-token budget.
    let args = json!({"agent": "alpha", "goal": "look around", "budget": 256});
    let result = service.call_tool(call("delegate", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true), "{}", text(&result));
    let report = result.structured_content.clone().unwrap();
    assert_eq!(report["status"], "budget_exceeded", "{report:#}");
    let message = text(&result);
    let line = message
        .lines()
        .find(|l| l.starts_with("alpha: budget exceeded"))
        .unwrap_or_else(|| panic!("no status line: {message}"));
    let reason = report["error"].as_str().expect("the report's reason");
    assert!(line.ends_with(reason), "{line} / {reason}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn delegate_parallel_names_each_agents_status_and_stays_a_success_when_one_completed() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"tasks": [
        {"agent": "alpha", "goal": "one"},
        {"agent": "beta", "goal": "two", "budget": 256}
    ]});
    let result = service
        .call_tool(call("delegate_parallel", args))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let message = text(&result);
    assert!(
        message.contains("alpha: completed (730/20,000 tokens)"),
        "{message}"
    );
    assert!(message.contains("beta: budget exceeded ("), "{message}");
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn optional_integers_are_plain_integers_with_the_servers_minimums() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let tools = service.list_all_tools().await.unwrap();
    let checks = [
        ("delegate", "budget", 256),
        ("create_agent", "budget", 256),
        ("read_file", "offset", 1),
        ("read_file", "limit", 1),
        ("codebase_search", "limit", 1),
    ];
    for (tool, field, minimum) in checks {
        let (schema, required) = schema_of(&tools, tool);
        let property = &schema["properties"][field];
        assert_eq!(property["type"], "integer", "{tool}.{field}: {schema:#}");
        assert_eq!(property["minimum"], minimum, "{tool}.{field}: {schema:#}");
        assert!(!required.contains(&field.to_owned()), "{tool}.{field}");
    }
    for tool in &tools {
        let (schema, _) = schema_of(&tools, &tool.name);
        let text = schema.to_string();
        assert!(!text.contains("null"), "{}: {schema:#}", tool.name);
    }
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn every_tool_refuses_unknown_arguments_by_schema_and_by_name() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let tools = service.list_all_tools().await.unwrap();
    for tool in &tools {
        let (schema, _) = schema_of(&tools, &tool.name);
        assert_eq!(
            schema["additionalProperties"], false,
            "{}: {schema:#}",
            tool.name
        );
    }
    // Refused as a tool error (the model that wrote the call reads it and can retry).
    let args = json!({"agent": "alpha", "goal": "x", "colour": "blue"});
    let result = service.call_tool(call("delegate", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(!ws.has_runs());
    let args = json!({"verbose": true});
    let result = service.call_tool(call("list_agents", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("`verbose`"), "{}", text(&result));
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn a_budget_below_a_turns_worth_is_refused_naming_the_minimum() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let args = json!({"agent": "alpha", "goal": "x", "budget": 100});
    let result = service.call_tool(call("delegate", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("budget 100 is below the least a run can use (256 tokens"),
        "{}",
        text(&result)
    );
    let args = json!({"prompt": "anything", "budget": 100});
    let result = service.call_tool(call("create_agent", args)).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("budget 100 is below the least a run can use (256 tokens"),
        "{}",
        text(&result)
    );
    assert!(!ws.has_runs());
    service.cancel().await.unwrap();
}

#[tokio::test]
async fn every_tool_is_annotated_and_the_server_names_itself_codex() {
    let ws = workspace();
    let (service, _) = connect(&ws, &[]).await;
    let info = service.peer_info().expect("the initialize result");
    let server = info.server_info.as_ref().expect("server info");
    assert_eq!(server.name, "codex");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    let tools = service.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 7);
    for tool in &tools {
        let a = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no annotations", tool.name));
        let hints = [
            a.read_only_hint,
            a.destructive_hint,
            a.idempotent_hint,
            a.open_world_hint,
        ];
        assert!(hints.iter().all(Option::is_some), "{}: {a:?}", tool.name);
        let reads_only = matches!(
            tool.name.as_ref(),
            "list_agents" | "read_file" | "grep" | "codebase_search"
        );
        assert_eq!(a.read_only_hint, Some(reads_only), "{}", tool.name);
    }
    service.cancel().await.unwrap();
}

/// A workspace whose agent `slow` waits a minute for its model.
fn slow_workspace() -> Workspace {
    let ws = Workspace::new();
    ws.agent("slow", &agent_yaml("slow", "false", 20_000));
    ws.replay("agents:\n  default:\n    turns:\n      - text: \"late\"\n        delay_ms: 60000\n");
    ws
}

/// Whether the process `pid` is gone (or a zombie waiting to be reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// `codex audit verify last` passes and says the run finished.
fn assert_log_verifies(ws: &Workspace) {
    ws.codex()
        .args(["audit", "verify", "last"])
        .assert()
        .success()
        .stdout(predicate::str::contains("OK: run"))
        .stdout(predicate::str::contains("The run finished"));
}

/// A signal during a call: the call is answered with the cancellation error, its run ends
/// its audit log (which verifies), and the server exits, long before the model's minute.
async fn a_signal_during_a_call_is_a_graceful_shutdown(signal: &str) {
    let ws = slow_workspace();
    let (service, client, pid) = connect_with_pid(&ws, &[]).await;
    let args = json!({"agent": "slow", "goal": "wait"});
    let handle = service
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(call("delegate", args))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    wait_for_progress(&client, "slow: started (attempt 1)").await;
    let sent = std::time::Instant::now();
    common::send_signal(signal, pid);
    let error = handle
        .await_response()
        .await
        .expect_err("the call is answered with an error");
    let message = error.to_string();
    assert!(message.contains("shutting down"), "{message}");
    assert!(message.contains("-32800"), "{message}");
    assert!(message.contains("audit log is complete"), "{message}");
    let mut waited = 0;
    while !exited(pid) && waited < 2400 {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        waited += 1;
    }
    assert!(exited(pid), "the server is still running");
    let took = sent.elapsed();
    // The model would answer after 60 s: the server did not wait for it.
    assert!(took.as_secs() < 20, "took {took:?}");
    eprintln!("SIG{signal} to exit: {took:?}");
    let finished = of_type(&ws.audit(), "agent_finished")[0].clone();
    assert_eq!(finished["status"], "cancelled", "{finished:#}");
    assert_log_verifies(&ws);
    let _ = service.cancel().await;
}

#[tokio::test]
async fn sigterm_during_a_call_answers_it_and_leaves_an_audit_log_that_verifies() {
    a_signal_during_a_call_is_a_graceful_shutdown("TERM").await;
}

#[tokio::test]
async fn sigint_during_a_call_answers_it_and_leaves_an_audit_log_that_verifies() {
    a_signal_during_a_call_is_a_graceful_shutdown("INT").await;
}

/// The end of the input (the client closed the server's stdin) during a call: the run is
/// cancelled at once, its audit log ends and verifies, the server exits.
#[test]
fn closing_stdin_during_a_call_ends_its_run_and_the_server() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let ws = slow_workspace();
    let mut child = ws
        .codex_std()
        .arg("mcp-server")
        .arg("--replay")
        .arg(ws.path("replay.yaml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "delegate", "arguments": {"agent": "slow", "goal": "wait"},
            "_meta": {"progressToken": "p"}}}),
    ];
    for m in messages {
        writeln!(stdin, "{m}").unwrap();
    }
    stdin.flush().unwrap();
    // Wait for the agent to start (its progress notification).
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed");
        if line.contains("slow: started") {
            break;
        }
    }
    let closed = std::time::Instant::now();
    drop(stdin);
    let status = child.wait().unwrap();
    let took = closed.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took.as_secs() < 20, "took {took:?}");
    eprintln!("stdin closed to exit: {took:?}");
    let finished = of_type(&ws.audit(), "agent_finished")[0].clone();
    assert_eq!(finished["status"], "cancelled", "{finished:#}");
    assert_log_verifies(&ws);
}

// ---------------------------------------------------------------------------------------
// Streamable HTTP (`--http`)
// ---------------------------------------------------------------------------------------

/// A bearer token for the tests (long enough to be accepted).
const HTTP_TOKEN: &str = "test-token-0123456789abcdef";

/// `codex mcp-server --http 127.0.0.1:0` with `extra` flags and the token set; the running
/// server and its URL (read from what it says on stderr).
fn serve_http(ws: &Workspace, extra: &[&str]) -> (std::process::Child, String) {
    serve_http_with(ws, &ws.path("replay.yaml"), extra)
}

/// [`serve_http`] with the replay script `replay`.
fn serve_http_with(
    ws: &Workspace,
    replay: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = ws
        .codex_std()
        .env("CODEX_MCP_TOKEN", HTTP_TOKEN)
        .arg("mcp-server")
        .arg("--http")
        .arg("127.0.0.1:0")
        .arg("--replay")
        .arg(replay)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, url)
}

/// Stops a server with SIGTERM and checks that it exits cleanly.
fn stop(mut child: std::process::Child) {
    let sent = std::time::Instant::now();
    common::send_signal("TERM", child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    eprintln!("HTTP server: SIGTERM to exit: {:?}", sent.elapsed());
}

#[test]
fn http_beyond_loopback_without_a_token_is_refused_before_starting() {
    let ws = workspace();
    ws.codex()
        .env_remove("CODEX_MCP_TOKEN")
        .args(["mcp-server", "--http", "0.0.0.0:0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a loopback address"))
        .stderr(predicate::str::contains("CODEX_MCP_TOKEN"));
}

#[tokio::test]
async fn http_serves_mcp_to_a_client_with_the_token_and_refuses_one_without() {
    let ws = workspace();
    let (child, url) = serve_http(&ws, &[]);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let http = reqwest::Client::new();
    let post = |token: Option<&str>| {
        let mut request = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(initialize.to_string());
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    let refused = post(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = post(Some("wrong-token-0123456789")).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let served = post(Some(HTTP_TOKEN)).await.unwrap();
    assert_eq!(served.status(), 200);
    let session = served.headers().get("mcp-session-id").cloned();
    let body = tokio::time::timeout(std::time::Duration::from_secs(30), served.text())
        .await
        .expect("the initialize answer")
        .unwrap();
    assert!(body.contains("\"name\":\"codex\""), "{body}");
    assert!(session.is_some(), "no session id");
    stop(child);
}

/// Where the tests' Python venv goes: beside the build, in the cargo target directory.
fn python_venv() -> std::path::PathBuf {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_codex"));
    exe.parent()
        .and_then(|p| p.parent())
        .expect("the target directory")
        .join("mcp-python-venv")
}

/// The venv's python with tests/mcp_python/requirements.txt installed (made once per
/// target directory, remade when the requirements change); `None` when Python is absent
/// and `CODEX_SKIP_PYTHON_TESTS` says to skip.
fn python_with_the_sdk() -> Option<std::path::PathBuf> {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CODEX_SKIP_PYTHON_TESTS").is_some() {
            eprintln!("\n!!! SKIPPED: python3 not found and CODEX_SKIP_PYTHON_TESTS is set: the Python MCP SDK test did not run !!!\n");
            return None;
        }
        panic!(
            "python3 not found: the test of the official Python MCP SDK needs Python 3.10+ \
             with venv and pip. Install it, or set CODEX_SKIP_PYTHON_TESTS=1 to skip it"
        );
    }
    let venv = python_venv();
    let requirements = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/mcp_python/requirements.txt"
    );
    let wanted = std::fs::read_to_string(requirements).unwrap();
    let stamp = venv.join("installed-requirements.txt");
    let python = venv.join("bin/python");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let run = |cmd: &mut std::process::Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(std::process::Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv));
        run(std::process::Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            requirements,
        ]));
        std::fs::write(&stamp, wanted).unwrap();
    }
    Some(python)
}

/// Runs tests/mcp_python/client.py with `args`; its JSON summary (last line of stdout).
fn python_client(python: &std::path::Path, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_python/client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

#[test]
fn the_official_python_sdk_drives_the_server_over_stdio_and_http() {
    let Some(python) = python_with_the_sdk() else {
        return;
    };
    let ws = workspace();
    let root = ws.root().display().to_string();
    let replay = ws.path("replay.yaml").display().to_string();
    let stdio = python_client(
        &python,
        &[
            "stdio",
            env!("CARGO_BIN_EXE_codex"),
            &root,
            &replay,
            env!("CARGO_PKG_VERSION"),
        ],
    );
    assert_eq!(stdio["tools"].as_array().unwrap().len(), 7, "{stdio:#}");
    // The SDK closed the server (stdin, then SIGTERM after 2 s): every run's log verifies.
    assert_log_verifies(&ws);

    let (child, url) = serve_http(&ws, &["--budget", "30000"]);
    let http = python_client(&python, &["http", &url, HTTP_TOKEN]);
    assert_eq!(http["agents"], json!(["alpha", "beta"]), "{http:#}");
    assert_eq!(http["tokens"], json!([730, 730]), "{http:#}");
    // One session budget for all the HTTP clients: 30,000 less the 1,460 used.
    assert_eq!(http["third_budget"], 28_540, "{http:#}");
    stop(child);

    // SIGTERM while an HTTP client's call runs: the call is answered with the
    // cancellation error, the run's audit log verifies, the server exits cleanly.
    ws.agent("slow", &agent_yaml("slow", "false", 20_000));
    let slow = ws.file(
        "slow.yaml",
        "agents:\n  default:\n    turns:\n      - text: \"late\"\n        delay_ms: 60000\n",
    );
    let (child, url) = serve_http_with(&ws, &slow, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_python/client.py");
    let mut client = std::process::Command::new(&python)
        .args([script, "http-shutdown", &url, HTTP_TOKEN])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "STARTED");
    stop(child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(client.wait().unwrap().success(), "{rest}");
    let answer: Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(answer["code"], -32800, "{answer:#}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("audit log is complete"),
        "{answer:#}"
    );
    assert_log_verifies(&ws);
}

// ---------------------------------------------------------------------------------------
// The client configurations of README.md
// ---------------------------------------------------------------------------------------

/// The code block of README.md after `<!-- client-config: NAME -->`.
fn readme_block(name: &str) -> String {
    let readme = include_str!("../README.md");
    let marker = format!("<!-- client-config: {name} -->\n");
    let after = &readme[readme.find(&marker).expect("the marker") + marker.len()..];
    let body = &after[after.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

/// The README's placeholders replaced by this test's binary and workspace.
fn localize(arg: &str, ws: &Workspace) -> String {
    arg.replace(
        "/opt/codex-actors/target/release/codex",
        env!("CARGO_BIN_EXE_codex"),
    )
    .replace("/home/me/project", &ws.root().display().to_string())
}

/// Starts `command args` with `env` (as a client would) and lists its tools.
async fn start_as_a_client_would(
    ws: &Workspace,
    command: &str,
    args: &[String],
    env: &[(String, String)],
) -> RunningService<RoleClient, Client> {
    let mut cmd = tokio::process::Command::new(localize(command, ws));
    cmd.args(args.iter().map(|a| localize(a, ws)))
        .env("CODEX_HOME", ws.home())
        .env_remove("CODEX_LOG")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .envs(env.iter().map(|(k, v)| (k, v)));
    let transport = TokioChildProcess::new(cmd).unwrap();
    let service = Client::default()
        .serve(transport)
        .await
        .unwrap_or_else(|e| panic!("{command} {args:?}: {e}"));
    let tools = service.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 7, "{command} {args:?}");
    service
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_readme_client_configurations_start_the_server() {
    let ws = workspace();

    // OpenAI's codex: ~/.codex/config.toml, with the key under `env`.
    let config: toml::Table = toml::from_str(&readme_block("openai-codex")).unwrap();
    let server = &config["mcp_servers"]["codex"];
    let env: Vec<(String, String)> = server["env"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(env[0].0, "OPENAI_API_KEY");
    let args: Vec<String> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let command = server["command"].as_str().unwrap();
    let service = start_as_a_client_would(&ws, command, &args, &env).await;
    service.cancel().await.unwrap();

    // Claude Code: `claude mcp add NAME --env K=V -- COMMAND ARGS...`.
    let line = readme_block("claude-mcp-add");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..3], ["claude", "mcp", "add"]);
    let env_pair = words[words.iter().position(|w| *w == "--env").unwrap() + 1];
    let (k, v) = env_pair.split_once('=').unwrap();
    let dashes = words.iter().position(|w| *w == "--").unwrap();
    let args: Vec<String> = words[dashes + 2..].iter().map(|w| w.to_string()).collect();
    let env = [(k.to_owned(), v.to_owned())];
    let service = start_as_a_client_would(&ws, words[dashes + 1], &args, &env).await;
    service.cancel().await.unwrap();

    // Claude Code: .mcp.json, the key expanded from the client's environment.
    let json: Value = serde_json::from_str(&readme_block("mcp-json")).unwrap();
    let server = &json["mcpServers"]["codex"];
    assert_eq!(server["env"]["OPENAI_API_KEY"], "${OPENAI_API_KEY}");
    let env = [("OPENAI_API_KEY".to_owned(), "sk-expanded".to_owned())];
    let command = server["command"].as_str().unwrap();
    let service = start_as_a_client_would(&ws, command, &strings(&server["args"]), &env).await;
    service.cancel().await.unwrap();

    // The MCP Inspector's CLI: `--cli COMMAND ARGS... --method ...`; a tool call's
    // `--tool-arg k=v` values are text, converted by the Inspector to the schema's type
    // ("integer" only: not ["integer", "null"]).
    for line in readme_block("inspector").lines() {
        let words: Vec<String> = shell_words(line);
        let cli = words.iter().position(|w| w == "--cli").unwrap();
        let method = words.iter().position(|w| w == "--method").unwrap();
        let server_args = words[cli + 2..method].to_vec();
        let service = start_as_a_client_would(&ws, &words[cli + 1], &server_args, &[]).await;
        if words[method + 1] == "tools/call" {
            let tools = service.list_all_tools().await.unwrap();
            let name = &words[words.iter().position(|w| w == "--tool-name").unwrap() + 1];
            let (schema, _) = schema_of(&tools, name);
            let mut arguments = serde_json::Map::new();
            for (i, w) in words.iter().enumerate() {
                if w == "--tool-arg" {
                    let (k, v) = words[i + 1].split_once('=').unwrap();
                    let value = match schema["properties"][k]["type"].as_str() {
                        Some("integer") => json!(v.parse::<u64>().unwrap()),
                        _ => json!(v),
                    };
                    arguments.insert(k.to_owned(), value);
                }
            }
            let params = CallToolRequestParams::new(name.clone()).with_arguments(arguments);
            let result = service.call_tool(params).await.unwrap();
            assert_ne!(result.is_error, Some(true), "{}", text(&result));
            assert_eq!(result.structured_content.unwrap()["budget"], 3000);
        }
        service.cancel().await.unwrap();
    }
}

/// Splits a shell command line into words (double quotes only, as the README uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// A child `codex mcp-server` (`via: mcp`) whose agent does not complete answers with
/// `isError: true` and its report: the parent counts the child's tokens and reason, not a
/// refusal.
#[test]
fn a_delegated_child_over_mcp_that_did_not_complete_reports_its_tokens_and_reason() {
    let ws = Workspace::new();
    ws.agent(
        "lead",
        "name: lead\ngoal: Split the work\ninstructions: Delegate.\ntools:\n  fs: { read: true }\n  delegate:\n    agents: [worker]\n    via: mcp\nbudget: 20000\nmax_output_tokens: 200\n",
    );
    ws.agent("worker", &agent_yaml("worker", "false", 3000));
    let replay = ws.replay(
        r#"
agents:
  lead:
    turns:
      - text: "Delegating."
        tool_calls: [{name: delegate, arguments: {agent: worker, goal: part, budget: 2000}}]
        usage: {input_tokens: 200, output_tokens: 40}
      - text: "Lead done."
        usage: {input_tokens: 300, output_tokens: 20}
  worker:
    turns:
      - text: "Looking."
        tool_calls: [{name: list_dir, arguments: {}}]
        usage: {input_tokens: 1200, output_tokens: 30}
      - text: "Never reached: the budget is spent."
"#,
    );
    ws.codex()
        .args(["delegate", "lead", "--goal", "Split the work", "--replay"])
        .arg(&replay)
        .arg("-o")
        .arg(ws.results_path())
        .assert()
        .success();
    let results = ws.results();
    let child = results["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["parent"] == "lead")
        .expect("the delegated child");
    assert_eq!(child["status"], "budget_exceeded", "{child:#}");
    assert_eq!(child["tokens_used"], 1230, "{child:#}");
    let error = child["error"].as_str().unwrap();
    assert!(error.contains("budget exhausted"), "{error}");
    assert!(!error.contains("refused"), "{error}");
}

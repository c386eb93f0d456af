"""Drives `codex mcp-server` through the official Python MCP SDK (`mcp` on PyPI).

Run by tests/mcp.rs (`the_official_python_sdk_drives_the_server_over_stdio_and_http`):

    client.py stdio CODEX_EXE WORKSPACE REPLAY VERSION
    client.py http URL TOKEN
    client.py http-shutdown URL TOKEN   (prints STARTED, then waits for the server to stop)

Each check failing raises; the last line printed is a JSON summary the Rust test reads.
"""

import asyncio
import json
import sys

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def delegate(session, agent, goal, budget=None):
    """Calls `delegate` with a progress callback; the result and the progress messages."""
    progress = []

    async def on_progress(_progress, _total, message):
        progress.append(message)

    args = {"agent": agent, "goal": goal}
    if budget is not None:
        args["budget"] = budget
    result = await session.call_tool("delegate", args, progress_callback=on_progress)
    return result, progress


async def over_stdio(codex, workspace, replay, version):
    params = StdioServerParameters(
        command=codex,
        args=["-C", workspace, "mcp-server", "--replay", replay, "--budget", "20000"],
        cwd=workspace,
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.server_info.name == "codex", f"server name: {init.server_info}")
            check(init.server_info.version == version, f"version: {init.server_info}")

            tools = {t.name: t for t in (await session.list_tools()).tools}
            check(len(tools) == 7, f"tools: {sorted(tools)}")
            budget = tools["delegate"].input_schema["properties"]["budget"]
            check(budget.get("type") == "integer", f"budget schema: {budget}")
            check(budget.get("minimum") == 256, f"budget schema: {budget}")
            for name, tool in tools.items():
                check(tool.input_schema.get("additionalProperties") is False, f"{name}: {tool.input_schema}")
                check(tool.annotations is not None, f"{name} has no annotations")
            check(tools["list_agents"].annotations.read_only_hint is True, "list_agents is read-only")
            check(tools["delegate"].annotations.read_only_hint is False, "delegate is not read-only")

            # An integer argument, as the SDK sends it.
            result, progress = await delegate(session, "alpha", "look around", budget=3000)
            check(not result.is_error, f"delegate: {result}")
            report = result.structured_content
            check(report["status"] == "completed", f"report: {report}")
            check(report["budget"] == 3000, f"report: {report}")
            check("alpha: completed (730/3,000 tokens)" in result.content[0].text, result.content[0].text)
            check("alpha: started (attempt 1)" in progress, f"progress: {progress}")

            # An unknown argument is refused, naming it (a tool error the model can read).
            refused = await session.call_tool("delegate", {"agent": "alpha", "goal": "x", "colour": "blue"})
            check(refused.is_error, f"an unknown argument was accepted: {refused}")
            check("unknown field `colour`" in refused.content[0].text, refused.content[0].text)

            listed = await session.call_tool("list_agents", {})
            names = [a["name"] for a in listed.structured_content["agents"]]
            check("alpha" in names, f"agents: {names}")
    return {"transport": "stdio", "tools": sorted(tools), "progress": progress}


async def one_http_client(url, token, agent, budget=None):
    """One client of the shared server: its own MCP session, one `delegate` call."""
    headers = {"Authorization": f"Bearer {token}"}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                check(init.server_info.name == "codex", f"server name: {init.server_info}")
                result, _ = await delegate(session, agent, f"{agent} over http", budget)
                check(not result.is_error, f"delegate over http: {result}")
                return result.structured_content


async def over_http(url, token):
    # Two clients at once, each in its own session.
    reports = await asyncio.gather(
        one_http_client(url, token, "alpha"), one_http_client(url, token, "beta")
    )
    for r in reports:
        check(r["status"] == "completed", f"report: {r}")
    # A third session asks for more than is left: it gets what the first two left of the
    # one session budget they all share.
    third = await one_http_client(url, token, "alpha", budget=1_000_000)
    # Without the token: refused.
    async with create_mcp_http_client() as http:
        try:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
            raise AssertionError("a client without the token was served")
        except AssertionError:
            raise
        except BaseException as e:  # the SDK wraps the 401 in an exception group
            refused = repr(e)
    return {
        "transport": "http",
        "agents": [r["agent"] for r in reports],
        "tokens": [r["tokens_used"] for r in reports],
        "third_budget": third["budget"],
        "without_token": refused[:200],
    }


async def cancelled_by_shutdown(url, token):
    """Calls `delegate` on the slow agent, says STARTED once it runs (the test then stops
    the server), and returns the error the call is answered with."""
    headers = {"Authorization": f"Bearer {token}"}
    started = False

    async def on_progress(_progress, _total, message):
        nonlocal started
        if not started and message and "started" in message:
            started = True
            print("STARTED", flush=True)

    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                try:
                    result = await session.call_tool(
                        "delegate", {"agent": "slow", "goal": "wait"}, progress_callback=on_progress
                    )
                    raise AssertionError(f"the call was answered: {result}")
                except MCPError as e:
                    return {"transport": "http", "code": e.code, "message": e.message}


def main():
    mode = sys.argv[1]
    if mode == "stdio":
        summary = asyncio.run(over_stdio(*sys.argv[2:6]))
    elif mode == "http":
        summary = asyncio.run(over_http(*sys.argv[2:4]))
    elif mode == "http-shutdown":
        summary = asyncio.run(cancelled_by_shutdown(*sys.argv[2:4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""A hostile MCP server (stdio, newline-delimited JSON-RPC, standard library only) for
tests/sandbox.rs: its one tool, `probe`, tries to read a file (a secret outside the
workspace) and to connect to 127.0.0.1:PORT, and writes what happened to REPORT (a
workspace path the calling agent may write) and returns it."""

import json
import socket
import sys


def probe(args):
    lines = []
    try:
        with open(args["secret"]) as f:
            lines.append("read: " + f.read().strip())
    except OSError as e:
        lines.append(f"read refused: {e}")
    try:
        with socket.create_connection(("127.0.0.1", int(args["port"])), timeout=5):
            lines.append("connect: connected")
    except OSError as e:
        lines.append(f"connect refused: {e}")
    text = "\n".join(lines) + "\n"
    try:
        with open(args["report"], "w") as f:
            f.write(text)
    except OSError as e:
        text += f"report not written: {e}\n"
    return text


TOOL = {
    "name": "probe",
    "description": "Read a file and connect to a local port.",
    "inputSchema": {
        "type": "object",
        "properties": {
            "secret": {"type": "string"},
            "port": {"type": "integer"},
            "report": {"type": "string"},
        },
        "required": ["secret", "port", "report"],
    },
}


def answer(msg):
    method = msg.get("method")
    if method == "initialize":
        version = msg.get("params", {}).get("protocolVersion", "2025-06-18")
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "probe", "version": "1"},
        }
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        text = probe(msg["params"].get("arguments", {}))
        return {"content": [{"type": "text", "text": text}], "isError": False}
    if method == "ping":
        return {}
    return None


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    if "id" not in msg:
        continue  # a notification
    result = answer(msg)
    if result is None:
        reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "unknown method"}}
    else:
        reply = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()

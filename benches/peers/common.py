"""Shared by the peer benchmarks: arguments, a pooled HTTP client, and the tool."""

import argparse
import pathlib

import httpx


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True, help="the model server's base URL (…/v1)")
    p.add_argument("--agents", type=int, required=True)
    p.add_argument("--turns", type=int, required=True)
    p.add_argument("--workspace", required=True)
    return p.parse_args()


def pooled_client(agents):
    """An HTTP client whose pool admits every agent's call at once ("pool tuned")."""
    limits = httpx.Limits(max_connections=agents + 10, max_keepalive_connections=agents + 10)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(600.0))


def reader(workspace):
    root = pathlib.Path(workspace)

    def read_file(path: str) -> str:
        """Read a file of the workspace."""
        return (root / path).read_text()

    return read_file

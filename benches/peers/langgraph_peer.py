"""N agents x T turns with LangGraph's prebuilt ReAct agent, against the benchmark's server."""

import asyncio
import time

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

import common


async def main():
    a = common.args()
    llm = ChatOpenAI(
        model="bench-model",
        base_url=a.url,
        api_key="bench-key",
        streaming=True,
        http_async_client=common.pooled_client(a.agents),
    )
    agent = create_react_agent(llm, tools=[tool(common.reader(a.workspace))])

    async def one(_k):
        await agent.ainvoke({"messages": [("user", "Read src/lib.rs")]}, {"recursion_limit": 4 * a.turns + 10})

    # Timed from here: imports and setup are not the framework's per-run cost.
    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(a.agents)))
    print(f"wall {time.perf_counter() - started:.6f}")


asyncio.run(main())

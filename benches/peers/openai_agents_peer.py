"""N agents x T turns with the OpenAI Agents SDK, against the benchmark's model server."""

import asyncio
import time

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

import common


async def main():
    a = common.args()
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=a.url, api_key="bench-key", http_client=common.pooled_client(a.agents))
    model = OpenAIChatCompletionsModel(model="bench-model", openai_client=client)
    tool = function_tool(common.reader(a.workspace))

    async def one(k):
        agent = Agent(name=f"b{k}", instructions="Read the file, then answer.", tools=[tool], model=model)
        result = Runner.run_streamed(agent, input="Read src/lib.rs", max_turns=a.turns + 2)
        async for _ in result.stream_events():
            pass

    # Timed from here: imports and setup are not the framework's per-run cost.
    started = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(a.agents)))
    print(f"wall {time.perf_counter() - started:.6f}")


asyncio.run(main())

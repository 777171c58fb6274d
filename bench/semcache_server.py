"""``semcache_eval.py --server``: the pairwise protocol through the real HTTP server.

Starts ``llmrelay serve`` (as tests/e2e/gateway.py does) with two wildcard aliases on the ``mock``
provider, ``semcache-eval-*`` (semantic cache, default checks) and ``semcache-bare-*`` (the same
with no checks: a bare cosine), both ``shared``-scoped. A wildcard alias keys the cache by the
name as requested, so pair ``i`` asks ``semcache-eval-i``: every pair is its own partition, as in
the in-process pairwise protocol, with one alias in the config. For each alias, question 1 of
every pair is stored with ``POST /admin/cache/warm`` (answer ``pair i``), then question 2 is asked
with ``POST /v1/chat/completions``, one at a time; ``x-llmrelay-cache`` says whether it was served
(``semantic-hit; similarity=...``). The same precision / recall table as in process, the in-process
figures on the same sample beside it (they should agree: what is measured is what users get), and
the client's p50 latency per outcome.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.gateway import run_gateway

from llmrelay.cache.settings import ALL_CHECKS

MASTER = "sk-semcache-eval-master-0123456789"
KINDS = {"verified": "semcache-eval", "bare": "semcache-bare"}


def config(threshold: float) -> dict[str, Any]:
    def alias(prefix: str, checks: list[str]) -> dict[str, Any]:
        semantic = {"threshold": threshold, "checks": checks, "max_entries": 1_000_000}
        return {
            "name": prefix + "-*",
            "targets": [{"provider": "mock"}],
            "cache": {"ttl": 86_400, "scope": "shared", "semantic": semantic},
        }

    return {
        "server": {"master_key": MASTER},
        "models": [alias(KINDS["verified"], list(ALL_CHECKS)), alias(KINDS["bare"], [])],
    }


async def warm(session: aiohttp.ClientSession, url: str, prefix: str, questions: list[str]) -> None:
    for start in range(0, len(questions), 100):
        items = [
            {"model": f"{prefix}-{i}", "question": q, "answer": f"pair {i}"}
            for i, q in enumerate(questions[start : start + 100], start)
        ]
        async with session.post(url + "/admin/cache/warm", json={"items": items}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            failed = [r for r in body["results"] if "error" in r]
            assert not failed, failed[:3]
        print(f"\r# warming {prefix}: {start + len(items)}/{len(questions)}", end="", file=sys.stderr)
    print(file=sys.stderr)


async def ask(session: aiohttp.ClientSession, url: str, model: str, text: str) -> tuple[bool, float, str]:
    """Served from the cache?, client ms, and the answer (``pair i`` when it was pair i's)."""
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    started = time.perf_counter()
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        answer = await resp.json()
        ms = (time.perf_counter() - started) * 1000
        assert resp.status == 200, answer
        outcome = resp.headers["x-llmrelay-cache"]
    return outcome != "miss", ms, answer["choices"][0]["message"]["content"]


async def measure(pairs: list[Any], threshold: float) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            run_gateway(config(threshold), Path(tmp)) as gateway,
            aiohttp.ClientSession(headers={"authorization": f"Bearer {MASTER}"}) as session,
        ):
            for kind, prefix in KINDS.items():
                await warm(session, gateway.url, prefix, [p.one for p in pairs])
                served, hit_ms, miss_ms = [], [], []
                for i, pair in enumerate(pairs):
                    hit, ms, text = await ask(session, gateway.url, f"{prefix}-{i}", pair.two)
                    assert not hit or text == f"pair {i}", (i, text)  # pairs never see each other
                    served.append(hit)
                    (hit_ms if hit else miss_ms).append(ms)
                results[kind] = {
                    "served": np.array(served),
                    "hit_p50_ms": statistics.median(hit_ms) if hit_ms else float("nan"),
                    "miss_p50_ms": statistics.median(miss_ms) if miss_ms else float("nan"),
                }
    return results


def run(pairs: list[Any], threshold: float, in_process: dict[str, Any]) -> None:
    """Print the server's table beside ``in_process`` (``{"bare"|"verified": served array}``)."""
    from semcache_eval import scores  # the bench directory is on sys.path when run as a script

    duplicate = np.array([p.duplicate for p in pairs])
    started = time.perf_counter()
    results = asyncio.run(measure(pairs, threshold))
    print(
        f"\n## through the server ({len(pairs)} pairs, threshold {threshold:.2f};"
        f" {time.perf_counter() - started:.0f} s)"
    )
    print(
        f"{'protocol':32} {'precision':>9} {'recall':>7} {'false-hit':>9} {'served':>7}"
        f" {'hit p50':>9} {'miss p50':>9}"
    )
    for kind in ("bare", "verified"):
        for where, served in (("server", results[kind]["served"]), ("in process", in_process[kind])):
            s = scores(served, duplicate)
            latency = (
                f" {results[kind]['hit_p50_ms']:7.2f}ms {results[kind]['miss_p50_ms']:7.2f}ms"
                if where == "server"
                else ""
            )
            print(
                f"{'pairwise ' + kind + ', ' + where:32} {s['precision']:9.3f} {s['recall']:7.3f}"
                f" {s['false_hit_rate']:9.4f} {s['served']:7d}{latency}"
            )
        differ = int(np.sum(results[kind]["served"] != in_process[kind]))
        print(f"  {kind}: server and in-process decisions differ on {differ} of {len(pairs)} pairs")

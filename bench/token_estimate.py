"""How far the calibrated token estimate is from the real tokenizer, on real text found locally.

    .venv/bin/python bench/token_estimate.py

``llmrelay.pricing.tokens.estimate_tokens`` (ASCII words and punctuation, no tokenizer) is compared
with ``count_tokens`` (``o200k_base`` through ``bpe-openai``) on pieces of real text, and with the
usual "characters / 4" rule as a baseline. Its two constants were fitted on this repository's
Markdown docs and the docstrings of a first set of standard-library modules (``fit`` rows); the
``held-out`` rows are text the fit never saw: the module docstrings of ``src/llmrelay`` and the
docstrings of other standard-library modules. A report, not a test: nothing here is timed or
asserted. The figures are for ``o200k_base`` (OpenAI); Anthropic and Gemini tokenizers differ from
it by their own margin, which no offline tool can measure.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import statistics
from collections.abc import Iterable
from pathlib import Path

from llmrelay.pricing.tokens import count_tokens, estimate_tokens

ROOT = Path(__file__).resolve().parents[1]
FIT_DOCS = ("README.md", "docs/architecture.md", "bench/README.md")
FIT_MODULES = [
    "json",
    "logging",
    "argparse",
    "collections",
    "subprocess",
    "http.client",
    "unittest",
    "decimal",
    "datetime",
    "pathlib",
    "typing",
    "functools",
    "itertools",
    "re",
    "random",
    "statistics",
    "csv",
    "sqlite3",
    "asyncio.tasks",
    "email.message",
    "shutil",
    "os",
]
HELD_OUT_MODULES = [
    "tarfile",
    "zipfile",
    "inspect",
    "dataclasses",
    "enum",
    "threading",
    "socket",
    "ssl",
    "textwrap",
    "difflib",
    "heapq",
    "string",
    "configparser",
    "contextlib",
    "fractions",
    "ipaddress",
    "urllib.parse",
    "xml.etree.ElementTree",
    "pickle",
    "queue",
]


def module_docs(names: Iterable[str]) -> list[str]:
    """Each module's docstring and those of the functions and classes it defines."""
    texts = []
    for name in names:
        module = importlib.import_module(name)
        parts = [module.__doc__ or ""]
        for attr in dir(module):
            value = getattr(module, attr, None)
            if callable(value) and getattr(value, "__module__", "") == module.__name__:
                parts.append(inspect.getdoc(value) or "")
        text = "\n\n".join(p for p in parts if p)
        if len(text) > 500:
            texts.append(text)
    return texts


def source_docstrings() -> list[str]:
    texts = []
    for path in sorted((ROOT / "src" / "llmrelay").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if doc and len(doc) > 300:
            texts.append(doc)
    return texts


def pieces(texts: Iterable[str], size: int) -> list[str]:
    """Cut into pieces of about ``size`` characters (a prompt's order of magnitude)."""
    out = []
    for text in texts:
        for start in range(0, len(text), size):
            piece = text[start : start + size]
            if len(piece) >= size // 4:
                out.append(piece)
    return out


def report(name: str, texts: list[str]) -> None:
    exact = [count_tokens(t) for t in texts]
    for label, estimate in (("estimate", estimate_tokens), ("chars/4", lambda t: round(len(t) / 4))):
        guesses = [estimate(t) for t in texts]
        errors = sorted(abs(g - e) / e for g, e in zip(guesses, exact, strict=True))
        total = sum(guesses) / sum(exact) - 1
        print(
            f"{name:30s} {label:9s} pieces={len(texts):4d} tokens={sum(exact):7d}"
            f"  total {total:+6.1%}  median |err| {statistics.median(errors):5.1%}"
            f"  p90 {errors[int(len(errors) * 0.9)]:5.1%}  max {errors[-1]:5.1%}"
        )


def main() -> None:
    fit = [(ROOT / p).read_text(encoding="utf-8") for p in FIT_DOCS] + module_docs(FIT_MODULES)
    held_out = {"held-out: llmrelay docstrings": source_docstrings(), "held-out: stdlib docstrings": []}
    held_out["held-out: stdlib docstrings"] = module_docs(HELD_OUT_MODULES)
    for size in (2000, 400):
        print(f"-- pieces of ~{size} characters, against o200k_base")
        report("fit: docs + stdlib", pieces(fit, size))
        for name, texts in held_out.items():
            report(name, pieces(texts, size))


if __name__ == "__main__":
    main()

"""bench/variants.py: reading gateway variants for one benchmark run (pure parts + the shipped files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.variants import from_mapping, load, load_all, parse_spec

VARIANTS = Path(__file__).resolve().parents[2] / "bench" / "variants"


def test_spec_is_name_equals_path_or_a_bare_path() -> None:
    assert parse_spec("noretry=bench/variants/no-retries.yaml") == (
        "noretry",
        Path("bench/variants/no-retries.yaml"),
    )
    assert parse_spec("bench/variants/no-retries.yaml") == (
        "no-retries",
        Path("bench/variants/no-retries.yaml"),
    )


@pytest.mark.parametrize("spec", ["direct=x.yaml", "litellm=x.yaml", "a b=x.yaml", "=x.yaml"])
def test_spec_names_that_would_clash_or_break_the_table_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="variant name"):
        parse_spec(spec)


def test_bench_block_is_split_off_the_llmrelay_config() -> None:
    raw = {"bench": {"headers": {"Idempotency-Key": "k-{n}"}}, "models": []}
    variant = from_mapping("idem", raw)
    assert variant.config == {"models": []}
    assert variant.headers == {"Idempotency-Key": "k-{n}"}
    assert "bench" in raw  # the input is not mutated


@pytest.mark.parametrize("bench", [{"header": {}}, {"headers": {"X": 1}}, {"headers": ["X"]}, "headers"])
def test_bad_bench_block_is_refused(bench: object) -> None:
    with pytest.raises(ValueError, match="bench"):
        from_mapping("v", {"bench": bench})


def test_shipped_variants_are_valid_llmrelay_configs() -> None:
    files = sorted(VARIANTS.glob("*.yaml"))
    assert {f.stem for f in files} >= {"baseline", "no-retries", "breaker-shadow", "idempotency"}
    variants = load_all([f"{f.stem}={f}" for f in files])
    assert {v.name for v in variants} == {f.stem for f in files}
    assert next(v for v in variants if v.name == "idempotency").headers == {"Idempotency-Key": "bench-{n}"}


def test_default_is_one_variant_named_llmrelay() -> None:
    [variant] = load_all([])
    assert variant.name == "llmrelay"  # the column name older results files use


def test_invalid_config_and_missing_bench_model_are_refused(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("models:\n  - name: bench\n    targets: [{provider: openai, model: m}]\n    retyr: {}\n")
    with pytest.raises(ValueError, match="retyr"):
        load(f"t={typo}")
    other = tmp_path / "other.yaml"
    other.write_text("models:\n  - name: other\n    targets: [{provider: openai, model: m}]\n")
    with pytest.raises(ValueError, match="bench"):
        load(f"o={other}")


def test_duplicate_names_are_refused() -> None:
    base = VARIANTS / "baseline.yaml"
    with pytest.raises(ValueError, match="differ"):
        load_all([f"a={base}", f"a={base}"])

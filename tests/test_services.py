"""A missing service or data file skips a test locally but fails it under CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services import require_file


def test_a_missing_file_fails_under_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"spec not found at .*required under CI=true"):
        require_file(tmp_path / "spec.yaml", "spec", hint="fetch it")


def test_a_missing_file_skips_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"spec not found at .*; fetch it"):
        require_file(tmp_path / "spec.yaml", "spec", hint="fetch it")


def test_a_present_file_is_returned(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("openapi: 3.1.0\n")
    assert require_file(spec, "spec", hint="") == spec

"""Where the server's SQLite state may live, checked through the real ``llmrelay serve``.

The default data dir is created at start-up; the directory of an explicit ``sqlite:`` URL is not
(a typo must not create directories, as root perhaps): the server refuses to start and names it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway import run_gateway

MODELS = [{"name": "mock", "targets": [{"provider": "mock"}]}]


async def test_the_default_data_dir_is_created(tmp_path: Path) -> None:
    home = tmp_path / "home"  # run_gateway's LLMRELAY_HOME; it does not exist yet
    assert not home.exists()
    async with run_gateway({"models": MODELS}, tmp_path):
        assert (home / "llmrelay.db").is_file()
    assert home.stat().st_mode & 0o077 == 0  # the key store lives there: owner only


async def test_an_explicit_url_in_a_missing_directory_stops_the_start(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent-dir" / "sub"
    config = {"models": MODELS, "state": {"url": f"sqlite:///{missing / 'state.db'}"}}
    with pytest.raises(RuntimeError, match="gateway exited early") as info:
        async with run_gateway(config, tmp_path):
            pass
    assert f"directory {missing} does not exist" in str(info.value)
    assert not (tmp_path / "nonexistent-dir").exists()

"""What every test, doctest included, runs under: the repository root as the working
folder (examples/ and golden/ are named relative to it, as `.ci/run` runs them), a plain
terminal environment, and no hypothesis deadline. A shell's FORCE_COLOR put colour codes
into captured output (37 tests failed), TERM=dumb dropped the live tables, and a narrow
COLUMNS wrapped the messages tests look for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

try:  # a dev dependency: the core environment of .ci/run has it too
    from hypothesis import settings
except ImportError:  # pragma: no cover
    pass
else:
    # No per-example deadline: hypothesis' 200 ms default fails a property on a loaded
    # machine, and these machines are shared. The examples themselves take ~30 ms at most.
    settings.register_profile("rewardkit", deadline=None)
    settings.load_profile("rewardkit")


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for name in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "LINES", "CLICOLOR_FORCE"):
        monkeypatch.delenv(name, raising=False)
    if os.environ.get("TERM") == "dumb":
        monkeypatch.delenv("TERM")

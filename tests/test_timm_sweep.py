"""The timm sweep: summary, fmaps, graph and cam on 35 architectures (see tests/timm_sweep.py)."""

from __future__ import annotations

import pytest

from tests import timm_sweep

pytest.importorskip("timm")

# Models that cannot do a command say why in one line; none may fail with an internal error.
KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(timm_sweep.MODELS.values()))
def test_every_command_works_on(name):
    outcome = timm_sweep.run_one(name)
    for command, result in outcome.items():
        expected = KNOWN.get((name, command))
        if expected is None:
            assert result == "ok", f"{command}: {result}"
        else:
            assert expected in result and not result.startswith("INTERNAL"), result

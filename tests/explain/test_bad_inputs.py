"""The bad-input suite (issue 21, "Done when"): every case of `tests.explain.bad_cases` run
as the installed `xaigraph` runs, each checked for the invariants of
`tests.explain.bad_inputs` (exit status, one line, nothing written on exit 2, nothing changed
outside OUT, strict JSON).

`make test` runs a fixed sample of 40 cases; `make fuzz` all of them
(`XAIGRAPH_BAD_INPUTS=all`). The cases run two at a time (`XAIGRAPH_BAD_INPUTS_JOBS`), each in
a folder of its own.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.explain import bad_cases
from tests.explain.bad_inputs import Case, Outcome, make_kit, run, violations

ALL = os.environ.get("XAIGRAPH_BAD_INPUTS", "") == "all"
JOBS = int(os.environ.get("XAIGRAPH_BAD_INPUTS_JOBS", "2"))
CASES = bad_cases.CASES if ALL else bad_cases.sample()

pytestmark = pytest.mark.slow


def _folder(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.encode("ascii", "backslashreplace").decode())


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, Outcome | str]:
    """The outcome of every case this session selected, run two at a time."""
    kit = make_kit(tmp_path_factory.mktemp("bad_inputs_kit"))
    cases = [item.callspec.params["case"] for item in request.session.items
             if item.nodeid.startswith(request.node.nodeid) and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("bad_inputs")

    def one(case: Case) -> Outcome | str:
        try:
            return run(case, root / _folder(case.name), kit)
        except Exception as exc:  # a hang, or a case that could not be made: that case fails
            return f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(JOBS) as pool:
        return dict(zip([c.name for c in cases], pool.map(one, cases), strict=True))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, outcomes: dict[str, Outcome | str]) -> None:
    outcome = outcomes[case.name]
    if isinstance(outcome, str):
        pytest.fail(outcome)
    found = violations(outcome)
    assert not found, (f"xaigraph {' '.join(case.args)} (exit {outcome.code}):\n  "
                       + "\n  ".join(found) + f"\nstderr:\n{outcome.stderr[-2000:]}")


def test_the_matrix_is_large_enough() -> None:
    assert len(bad_cases.CASES) >= 200
    assert len(bad_cases.sample()) == 40

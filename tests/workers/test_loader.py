"""load_worker/run_worker targets: what works, and the hints when it does not."""

from __future__ import annotations

import sys
import textwrap

import pytest

from workmesh.workers import Worker, load_worker
from workmesh.workers.examples import basic


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    (tmp_path / "wm_target_mod.py").write_text(
        textwrap.dedent("""
        from workmesh.workers import Worker, workflow

        @workflow(name="one")
        async def one(ctx):
            return {}

        async def undecorated(ctx):
            return {}

        flows = [one]
        mixed = [one, undecorated]
        server = Worker([one])
        number = 3
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("wm_target_mod", None)


def test_loads_a_worker_a_list_and_a_function(module_dir):
    assert load_worker("workmesh.workers.examples.basic:worker") is basic.worker
    assert isinstance(load_worker("wm_target_mod:server"), Worker)
    assert list(load_worker("wm_target_mod:flows").definitions) == ["one"]
    assert list(load_worker("wm_target_mod:one").definitions) == ["one"]


@pytest.mark.parametrize(
    "target, error, fragment",
    [
        ("wm_target_mod", ValueError, "is not `module:attr`"),
        ("wm_target_mod:", ValueError, "is not `module:attr`"),
        ("no_such_module_xyz:worker", ImportError, "no module named 'no_such_module_xyz'"),
        ("wm_target_mod:missing", ValueError, "has no attribute 'missing'; Workers in that module: server"),
        ("wm_target_mod:mixed", ValueError, "undecorated is not a workflow; add @workflow("),
        ("wm_target_mod:undecorated", ValueError, "undecorated is not a workflow; add @workflow("),
        ("wm_target_mod:number", ValueError, "is a int; a target is `module:attr`"),
    ],
)
def test_bad_targets_explain_themselves(module_dir, target, error, fragment):
    with pytest.raises(error) as info:
        load_worker(target)
    assert fragment in str(info.value)

"""A seeded fuzz campaign of the checkpoint readers (``scripts/fuzz_checkpoints.py``, which
runs 10,000 files and more): a few hundred damaged copies of the fixtures, loaded in one
child process whose address space may grow by at most 3 GB, with a time limit per file."""
import collections
import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "fuzz_checkpoints.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_seeded_campaign_finds_no_unclear_error_memory_blow_up_hang_or_crash(fuzz):
    cases = fuzz.cases(per_case=14)  # 23 formats x strategies: 322 files
    results = fuzz.campaign(cases, seed=20261201, workers=1, seconds=10.0, memory_gb=3.0,
                            batch_size=len(cases))  # one child loads them all
    bad = [f"{result}: {case.format} / {case.strategy} #{case.index}: {detail}"
           for case, result, detail in results if result in fuzz.BAD_OUTCOMES]
    assert not bad, "\n".join(bad)
    counts = collections.Counter(result for _, result, _ in results)
    assert counts["clear"] > len(cases) / 2 and counts["loaded"] > 0  # the damage is real


def test_the_same_seed_damages_the_same_bytes(fuzz, tmp_path):
    files = fuzz.originals(tmp_path)
    case = fuzz.Case("torchscript", "zip member", 7)
    assert fuzz.damaged(case, files, seed=3) == fuzz.damaged(case, files, seed=3)
    assert fuzz.damaged(case, files, seed=3) != fuzz.damaged(case, files, seed=4)
    assert fuzz.damaged(case, files, seed=3) != files["torchscript"]


def test_a_child_that_dies_is_a_crash_and_one_that_stops_answering_a_hang(fuzz, monkeypatch):
    def misbehave(case, path, run):
        if case.index == 0:
            import os
            os._exit(3)  # dies without an answer
        if case.index == 1:
            while True:  # never returns (the alarm stops it)
                pass
        raise MemoryError("asked for too much")

    monkeypatch.setattr(fuzz, "load", misbehave)
    cases = [fuzz.Case("npz", "overwrite", index) for index in range(3)]
    results = fuzz.campaign(cases, seed=0, workers=1, seconds=0.5, batch_size=3)
    assert [result for _, result, _ in results] == ["crash", "hang", "memory"]

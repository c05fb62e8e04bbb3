"""The GPU check's benchmark runs: its GPU table, in its quick form, on the cuda device
(the fake CuPy in CI), so that a machine lent with a GPU does not find it broken."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench_models():
    spec = importlib.util.spec_from_file_location(
        "bench_models", os.path.join(ROOT, "benchmarks", "bench_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_the_gpu_table_measures_every_row_on_the_cuda_device(bench_models, capsys):
    rows = bench_models.bench_gpu(reference=None, repeats=1, quick=True)
    assert [row["label"] for row in rows] == [label for label, *_ in bench_models.GPU_TABLE]
    assert all(row["miniclip_s"] > 0 and row["pytorch_s"] is None for row in rows)
    bench_models.print_gpu_table(rows)
    table = capsys.readouterr().out.splitlines()
    assert table[-len(rows) - 2].startswith("| measurement | miniclip | PyTorch |")
    assert table[-1].startswith("| RN50 encode_image, batch 128 |")

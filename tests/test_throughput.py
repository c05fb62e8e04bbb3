"""The training log's efficiency: images/s and model FLOP utilisation (``Throughput``)."""
import pytest

from miniclip.training import progress
from miniclip.training.progress import Progress, Throughput


@pytest.fixture
def clock(monkeypatch):
    """A settable ``time.perf_counter`` for the progress module."""
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    return now


def test_recent_rates_cover_the_steps_since_the_last_call(clock):
    meter = Throughput(peak=1e9)
    meter.count(64, 2e9)
    clock[0] += 4.0
    assert meter.recent() == pytest.approx((16.0, 0.5))          # 64 images, 2 GFLOP in 4 s
    meter.count(64, 1e9)
    clock[0] += 1.0
    assert meter.recent() == pytest.approx((64.0, 1.0))


def test_the_total_covers_every_step_and_names_the_peak(clock):
    meter = Throughput(peak=2e9)
    for _ in range(3):
        meter.count(10, 1e9)
        clock[0] += 1.0
        meter.recent()
    assert meter.total() == pytest.approx(
        {"images_per_second": 10.0, "model_flop_utilization": 0.5, "matmul_peak_flops": 2e9})


def test_the_progress_line_shows_the_rate_and_mfu(capsys):
    line = Progress("tiny-vit", 0, 10, every=5, quiet=False)
    line.bar = None  # a log, not a terminal
    line.show(5, loss=1.0, temp=0.07, lr=1e-3, rate=(123.4, 0.456))
    assert "123 img/s  MFU 46%" in capsys.readouterr().err

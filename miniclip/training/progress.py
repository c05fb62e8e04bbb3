"""What a run shows as it goes, and how Ctrl-C stops it between two steps.

* ``Progress``     a tqdm bar on a terminal, else a line every N steps, or nothing
* ``Throughput``   images per second and model FLOP utilisation, for the line and metrics
* ``StopRequest``  Ctrl-C turned into a request to stop after the current step
* ``Interrupted``  raised once that step is saved, for the program to say how to resume
"""
import signal
import sys
import threading
import time

from tqdm import tqdm


class Interrupted(Exception):
    """Ctrl-C stopped the run after a completed step, which was saved."""

    def __init__(self, step):
        super().__init__(f"interrupted after step {step}")
        self.step = step


class StopRequest:
    """Ctrl-C during training, turned into a request to stop after the current step.

    An interrupt that lands inside a step could leave half the weights updated; instead the
    first Ctrl-C sets :attr:`requested`, and the loop saves a consistent checkpoint after the
    step and stops. A second Ctrl-C interrupts at once (the last checkpoint is kept).
    Python delivers signals to the main thread only, so elsewhere this does nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step (press it again to stop at once)",
              file=sys.stderr)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Throughput:
    """Counts the examples and model FLOPs of the steps taken, and turns them into images/s
    and model FLOP utilisation (MFU: model FLOP/s over the machine's float32 matrix-product
    peak, ``system.blas.matmul_peak_flops``, measured on first use). ``recent()`` covers the
    steps since it was last called, ``total()`` every step counted, over their wall time
    (data loading included: it is what the run achieves)."""

    def __init__(self, peak):
        self.peak = peak
        self.began = self.window_began = time.perf_counter()
        self.examples = self.flops = self.window_examples = self.window_flops = 0

    def count(self, examples, flops):
        self.examples += examples
        self.flops += flops
        self.window_examples += examples
        self.window_flops += flops

    def _rates(self, examples, flops, seconds):
        seconds = max(seconds, 1e-9)
        return examples / seconds, flops / seconds / self.peak

    def recent(self):
        """``(images/s, MFU)`` since the previous call (or the start)."""
        now = time.perf_counter()
        rates = self._rates(self.window_examples, self.window_flops, now - self.window_began)
        self.window_began, self.window_examples, self.window_flops = now, 0, 0
        return rates

    def total(self):
        """``{"images_per_second", "model_flop_utilization", "matmul_peak_flops"}`` of every
        step counted, for ``metrics.json``."""
        rate, mfu = self._rates(self.examples, self.flops, time.perf_counter() - self.began)
        return {"images_per_second": rate, "model_flop_utilization": mfu,
                "matmul_peak_flops": self.peak}


class Progress:
    """Training progress: a tqdm bar on a terminal; without one (a CI log, a file), one
    line every ``every`` steps, since a bar's hundreds of ``\\r`` redraws would each become
    a line; nothing when ``quiet``."""

    def __init__(self, name, start, total, every, quiet):
        self.total, self.every, self.quiet = total, max(every, 1), quiet
        self.last, self.began = start, time.perf_counter()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=start, desc=name, dynamic_ncols=True)

    def due(self, step):
        """Whether a progress line is due at ``step`` (never with a bar, or when quiet)."""
        return self.bar is None and not self.quiet and step % self.every == 0

    def show(self, step, loss, temp, lr, rate=None):
        """``rate``: ``(images/s, MFU)`` of the recent steps (``Throughput.recent``)."""
        speed = f"{rate[0]:.0f} img/s  MFU {rate[1]:.0%}" if rate else ""
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.bar.set_postfix({"loss": f"{loss:.3f}", "temp": f"{temp:.4f}", "lr": f"{lr:.1e}"}
                                 | ({"speed": speed} if rate else {}))
            self.last = step
        elif self.due(step) or (step == self.total and not self.quiet):
            seconds = time.perf_counter() - self.began
            print(f"step {step}/{self.total}  loss {loss:.3f}  temp {temp:.4f}  lr {lr:.1e}  "
                  f"{speed + '  ' if rate else ''}{seconds:.0f} s", file=sys.stderr, flush=True)

    def write(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        elif not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()

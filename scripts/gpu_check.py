"""The GPU check: everything a machine with an NVIDIA GPU can tell about miniclip's CuPy path.

    python scripts/gpu_check.py [--out DIR] [--repeats 5]

1. the test suite's ``cuda`` tests, which on a machine with CuPy and a GPU run on the GPU
   (``tests/conftest.py``): ``python -m pytest -k cuda``;
2. the GPU table of ``benchmarks/bench_models.py --device cuda``, beside OpenAI's PyTorch
   model when torch (with CUDA) and ``clip-anytorch`` are installed;
3. the tiny training run on the GPU, in float32 and in mixed precision
   (``python -m miniclip.train --tiny --device cuda [--amp]``), with its time and
   zero-shot accuracy.

It prints a Markdown summary (and writes it, with the logs, to ``--out``). ``--quick``
runs small versions of 2 and 3 and skips 1: a check that the script itself works, which
``--device cpu`` lets any machine run.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, log):
    """Run ``command`` in the repository, teeing its output into ``log``; (code, output)."""
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if log:
        with open(log, "w") as file:
            file.write(output)
    print(output[-3000:], flush=True)
    print(f"({time.perf_counter() - started:.0f} s, exit code {result.returncode})", flush=True)
    return result.returncode, output


def test_summary(output):
    """The last line pytest prints, e.g. '439 passed, 2 failed, 1 skipped in 22.0s'."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return lines[-1].strip("= ") if lines else "no test summary (see the log)"


def tiny_run_summary(output):
    """'trained ... in S s' and the zero-shot line of a ``miniclip.train`` run."""
    keep = [line for line in output.splitlines()
            if line.startswith("trained ") or "zero-shot" in line or line.startswith("error")]
    return "; ".join(keep) or "no summary (see the log)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", metavar="DIR", help="write the summary and the logs here")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu with --quick")
    parser.add_argument("--quick", action="store_true",
                        help="small benchmark and run, no tests: check that the script works")
    args = parser.parse_args(argv)
    if args.out:
        os.makedirs(args.out, exist_ok=True)

    def log(name):
        return os.path.join(args.out, name) if args.out else None

    summary = ["# miniclip GPU check", ""]
    if not args.quick:
        code, output = run([sys.executable, "-m", "pytest", "-q", "-k", "cuda", "-p",
                            "no:cacheprovider"], log("tests.log"))
        summary += [f"cuda tests: {test_summary(output)}", ""]

    bench = [sys.executable, "benchmarks/bench_models.py", "--device", args.device,
             "--repeats", str(1 if args.quick else args.repeats)]
    if args.device == "cuda":
        code, output = run(bench + (["--quick"] if args.quick else []), log("bench.log"))
        table = [line for line in output.splitlines() if line.startswith("|")]
        summary += table or [f"benchmark failed (exit code {code}, see the log)"]
        summary.append("")

    steps = ["--steps", "50", "--eval-size", "60"] if args.quick else []
    # (mixed precision on a CPU is correct but hundreds of times slower: GPU only)
    for amp in ([], ["--amp"]) if args.device == "cuda" else ([],):
        name = "tiny run" + (" --amp" if amp else "")
        code, output = run([sys.executable, "-m", "miniclip.train", "--tiny", "--quiet",
                            "--device", args.device, *steps, *amp],
                           log(name.replace(" ", "_").replace("--", "") + ".log"))
        summary.append(f"{name} on {args.device}: {tiny_run_summary(output)}")

    text = "\n".join(summary) + "\n"
    print("\n" + text)
    if args.out:
        with open(os.path.join(args.out, "gpu_check.md"), "w") as file:
            file.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m miniclip.experiments NAME``: run one of the paper's experiments at toy scale
(or ``all`` of them), writing ``results.json`` and a figure per experiment."""
import argparse
import os
import sys

from ..system.threads import limit_blas_threads
from . import compare_objectives, few_shot, prompts, robustness
from .context import FULL, QUICK, Context, clock

EXPERIMENTS = {"objectives": compare_objectives, "few-shot": few_shot,
               "robustness": robustness, "prompts": prompts}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m miniclip.experiments",
        description="The CLIP paper's findings at toy scale, on synthetic shapes, on the CPU.",
        epilog="examples:\n"
               "  python -m miniclip.experiments objectives     # Figure 2, and SigLIP\n"
               "  python -m miniclip.experiments all            # all four, about 15 minutes\n"
               "  python -m miniclip.experiments all --quick    # a minute; too short to learn\n"
               "\nTrained models are cached in OUT/models and shared between experiments.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=list(EXPERIMENTS) + ["all"],
                        help="the experiment to run")
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "experiments"),
                        help="results folder (default runs/experiments); one subfolder per "
                             "experiment, the model cache in DIR/models")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced scale that runs in about a minute")
    parser.add_argument("--jobs", metavar="N", type=int, default=1,
                        help="train the models first in N processes of one BLAS thread each "
                             "(default 1: each when an experiment first needs it)")
    parser.add_argument("--threads", metavar="N", type=int, default=None,
                        help="BLAS threads (default: as python -m miniclip.train chooses)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print(limit_blas_threads(1 if args.jobs > 1 else args.threads))
    context = Context(args.out, QUICK if args.quick else FULL)
    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    began = clock()
    if args.jobs > 1:
        context.train_ahead([model for name in names
                             for model in EXPERIMENTS[name].needed(context.scale)], args.jobs)
        print(f"trained the models in {args.jobs} processes ({clock()[0] - began[0]:.0f} s)",
              flush=True)
    for name in names:
        started = clock()
        path = EXPERIMENTS[name].run(context)
        print(f"{name}: {path} ({clock()[0] - started[0]:.0f} s)", flush=True)
    wall, cpu = (now - then for now, then in zip(clock(), began))
    print(f"done in {wall:.0f} s ({cpu:.0f} s of CPU); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

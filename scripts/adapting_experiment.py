"""Fine-tuning, LiT and WiSE-FT at toy scale: the table and figure of docs/results.md.

    OPENBLAS_NUM_THREADS=1 python scripts/adapting_experiment.py [--out runs/adapting]
        [--seeds 0 1 2] [--shift background] [--lr 3e-4 --pretrained runs/adapting]

For each seed, one after another (each step is skipped when its output exists, so an
interrupted experiment picks up where it stopped):

1. pretrain the tiny CLIP on clean synthetic shapes: ``python -m miniclip.train --tiny``;
2. fine-tune it on striped backgrounds (``--train-shift background``, the fine-tuning
   defaults of ``--init-from``), and the same with ``--lock-image`` (LiT);
3. export the clean and the shifted test pictures of that seed as class folders (the very
   pictures the run's own benchmark scores: 900 clean, 300 shifted);
4. sweep WiSE-FT's α over both folders: ``python -m miniclip.evaluation wise-ft``.

Then it writes ``summary.json`` and ``adapting.png`` into ``--out`` and prints the
Markdown table: zero-shot top-1 on the clean and the shifted set, and their mean, for the
zero-shot model (α = 0), the fine-tuned one (α = 1), LiT and every α, as mean ± standard
deviation over the seeds, and whether some α beats both ends on the mean of the two.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from matplotlib.figure import Figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT]

from miniclip.data import SyntheticShapes  # noqa: E402
from miniclip.training.plots import save_figure  # noqa: E402

ALPHAS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"

#: How the table and the figure name each shifted set.
SHIFT_NAMES = {"outline": "outlines", "noise": "heavy noise", "background": "striped"}


def run(*command):
    """Run ``python -m ...`` in this interpreter, echoing the command."""
    print("+ python -m " + " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", *command], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def one_seed(out, seed, shift, tuning):
    """Steps 1-4 for ``seed``, fine-tuning with the extra options ``tuning``; returns
    ``(sweep JSON, LiT metrics)``."""
    folder = lambda *parts: os.path.join(out, *parts)  # noqa: E731
    pretrained = folder(f"pretrain{seed}", "checkpoint.npz")
    if not os.path.exists(folder(f"pretrain{seed}", "metrics.json")):
        run("miniclip.train", "--tiny", "--seed", str(seed), "--out", folder(f"pretrain{seed}"),
            "--quiet", "--overwrite")
    for name, lock in ((f"finetune{seed}", []), (f"lit{seed}", ["--lock-image"])):
        if not os.path.exists(folder(name, "metrics.json")):
            run("miniclip.train", "--tiny", "--init-from", pretrained, "--train-shift", shift,
                "--seed", str(seed), *lock, *tuning, "--out", folder(name), "--quiet",
                "--overwrite")
    clean, shifted = folder(f"clean{seed}"), folder(f"{shift}{seed}")
    if not os.path.exists(os.path.join(shifted, "templates.txt")):
        SyntheticShapes(900, 32, split="test", seed=seed).save_class_folders(clean)
        SyntheticShapes(300, 32, split="test", seed=seed, shift=shift).save_class_folders(shifted)
    sweep = folder(f"wise_ft{seed}.json")
    if not os.path.exists(sweep):
        run("miniclip.evaluation", "wise-ft", pretrained, folder(f"finetune{seed}", "checkpoint.npz"),
            "--alphas", ALPHAS, "--eval-dir", clean, "--eval-dir", shifted,
            "--templates", os.path.join(clean, "templates.txt"),
            "--plot", folder(f"wise_ft{seed}.png"), "--json", sweep)
    with open(sweep) as file, open(folder(f"lit{seed}", "metrics.json")) as lit:
        return json.load(file), json.load(lit)


def summarise(sweeps, lits, shift):
    """Per seed: the clean, shifted and mean top-1 of every α and of LiT, and the verdict."""
    alphas = sweeps[0]["alphas"]
    clean = np.array([list(s["top1"].values())[0] for s in sweeps])          # [S, A]
    shifted = np.array([list(s["top1"].values())[1] for s in sweeps])        # [S, A]
    lit = np.array([[m["zeroshot_top1"], m[f"zeroshot_top1_{shift}"]] for m in lits])  # [S, 2]
    mean = (clean + shifted) / 2                                             # [S, A]
    per_seed = [bool(m.max() > max(m[0], m[-1])) for m in mean]
    curve = mean.mean(axis=0)                                                # [A]
    best = int(np.argmax(curve))
    return dict(alphas=alphas, clean=clean.tolist(), shifted=shifted.tolist(),
                lit=lit.tolist(), best_alpha=alphas[best],
                best_beats_both_ends=bool(curve[best] > max(curve[0], curve[-1])),
                beats_both_ends_per_seed=per_seed,
                best_alpha_per_seed=[alphas[int(np.argmax(m))] for m in mean],
                load_average=os.getloadavg())


def table(summary, shift):
    def cell(values):
        values = 100 * np.asarray(values)
        return f"{values.mean():.1f} ± {values.std():.1f}"

    clean, shifted = np.array(summary["clean"]), np.array(summary["shifted"])
    lit = np.array(summary["lit"])
    rows = [("zero-shot (α = 0)", clean[:, 0], shifted[:, 0]),
            ("fine-tuned (α = 1)", clean[:, -1], shifted[:, -1]),
            ("LiT (image tower locked)", lit[:, 0], lit[:, 1])]
    rows += [(f"WiSE-FT α = {a:g}", clean[:, i], shifted[:, i])
             for i, a in enumerate(summary["alphas"]) if 0 < a < 1]
    lines = [f"| model | clean | {SHIFT_NAMES[shift]} | mean of the two |", "|---|---|---|---|"]
    lines += [f"| {name} | {cell(c)} | {cell(s)} | {cell((c + s) / 2)} |" for name, c, s in rows]
    return "\n".join(lines)


def plot(path, summary, shift, title):
    shift = SHIFT_NAMES[shift]
    alphas = np.array(summary["alphas"])
    clean, shifted = np.array(summary["clean"]), np.array(summary["shifted"])
    lit = np.array(summary["lit"])
    figure = Figure(figsize=(11, 4))
    left, right = figure.subplots(1, 2, gridspec_kw=dict(left=0.07, right=0.98, bottom=0.13,
                                                         top=0.9, wspace=0.25))
    for values, label in ((clean, "clean"), (shifted, shift), ((clean + shifted) / 2, "mean")):
        line, = left.plot(alphas, values.mean(0), marker="o", label=label,
                          ls="--" if label == "mean" else "-")
        left.fill_between(alphas, values.min(0), values.max(0), alpha=0.2,
                          color=line.get_color())
    left.set(xlabel="α (0: zero-shot, 1: fine-tuned)", ylabel="zero-shot top-1",
             title=f"{title}: mean and range of {len(clean)} seeds", ylim=(0, 1))
    left.legend()
    right.plot(clean.mean(0), shifted.mean(0), marker="o", color="grey", label="WiSE-FT α")
    for i in (0, len(alphas) - 1):
        right.annotate(f"α = {alphas[i]:g}", (clean.mean(0)[i], shifted.mean(0)[i]),
                       textcoords="offset points", xytext=(6, -12))
    right.scatter(clean[:, 0], shifted[:, 0], marker="s", label="zero-shot (per seed)")
    right.scatter(clean[:, -1], shifted[:, -1], marker="^", label="fine-tuned (per seed)")
    right.scatter(lit[:, 0], lit[:, 1], marker="*", s=90, label="LiT (per seed)")
    right.set(xlabel="top-1 on clean shapes", ylabel=f"top-1 on {shift} shapes",
              title="both distributions at once", xlim=(0, 1), ylim=(0, 1))
    right.legend(loc="upper right")
    save_figure(figure, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "adapting"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--shift", choices=("outline", "noise", "background"),
                        default="background")
    parser.add_argument("--lr", type=float,
                        help="the fine-tuning runs' peak rate (default: --init-from's)")
    parser.add_argument("--pretrained", metavar="DIR",
                        help="take the pretrained runs (pretrain<seed>/) from this earlier "
                             "--out instead of training them again")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for seed in args.seeds if args.pretrained else ():
        link = os.path.join(args.out, f"pretrain{seed}")
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(args.pretrained, f"pretrain{seed}")), link)
    tuning = ["--lr", str(args.lr)] if args.lr else []
    results = [one_seed(args.out, seed, args.shift, tuning) for seed in args.seeds]
    summary = summarise(*zip(*results), args.shift)
    with open(os.path.join(args.out, "summary.json"), "w") as file:
        json.dump(summary, file, indent=1)
    plot(os.path.join(args.out, "adapting.png"), summary, args.shift,
         f"WiSE-FT, fine-tuned at lr {args.lr:g}" if args.lr else "WiSE-FT")
    print(table(summary, args.shift))
    print(f"best mean over the seeds at α = {summary['best_alpha']:g}; above both ends: "
          f"{summary['best_beats_both_ends']} (per seed: {summary['beats_both_ends_per_seed']},"
          f" best α {summary['best_alpha_per_seed']}); load average "
          + " ".join(f"{v:.2f}" for v in summary["load_average"]))


if __name__ == "__main__":
    main()

"""``python -m miniclip.evaluation``: evaluate a CLIP on folders of images, or label images.

Five commands; the first three on any weights ``miniclip.load`` reads (``--weights``) or on a
configuration with random weights (``--model``, a baseline and a quick test):

* ``classify DIR``: zero-shot top-1/top-5 on a folder of class sub-folders, and with
  ``--linear-probe`` a logistic-regression probe on the frozen image features;
* ``retrieval DIR``: image->text and text->image Recall@1/5/10 on a folder of images with
  a captions file;
* ``predict --labels "cat,dog" IMAGE...``: the top-k labels of each image with their
  probabilities;
* ``interpolate ZERO_SHOT FINE_TUNED --alpha A --out MIXED.npz``: WiSE-FT's weight-space
  mix of a fine-tuned model and the one it started from (``wise_ft.py``);
* ``wise-ft ZERO_SHOT FINE_TUNED --eval-dir A --eval-dir B``: zero-shot top-1 of that mix
  on each folder for several α, as JSON and a PNG.

``--json FILE`` also writes the numbers to a file. A problem with the inputs (a missing
folder, a bad captions file, ...) ends with one ``error:`` line naming it and exit code 2,
an unexpected failure with exit code 1 (``--debug`` shows the traceback), Ctrl-C with 130;
warnings are one line each (``miniclip/system/program.py``, as for every program).
"""
import argparse
import json
from pathlib import Path

import numpy as np

from .. import nn
from ..data import Skipped, read_caption_folder, read_classification_folder
from ..data.images import preprocess_in_batches
from ..data.preprocess import Preprocess
from ..models import available_configs, create_model
from ..models.pretrained import load
from ..system.program import UsageError, run_program
from ..weights import save_npz
from .classification import DEFAULT_TEMPLATES, read_templates, zero_shot_scores
from .features import encode_image_files, tokenizer_for
from .linear_probe import linear_probe, stratified_split
from .retrieval import RECALL_AT, retrieval_recall
from .wise_ft import best_alpha, first_mismatch, interpolate, model_state, plot_sweep, sweep
from .zeroshot import encode_texts, zero_shot_classifier, zero_shot_predict

PROG = "python -m miniclip.evaluation"

class InputError(UsageError):
    """A problem with the command line's inputs that the message tells how to fix."""


def build_parser():
    shared = argparse.ArgumentParser(add_help=False)  # options of every command
    shared.add_argument("--tokenizer", metavar="FILE",
                        help="OpenAI's merges file (or a Hugging Face folder) for released "
                             "weights, if no clip/open_clip package provides it")
    shared.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the model runs (default cpu)")
    shared.add_argument("--batch-size", metavar="N", type=int, default=64,
                        help="images decoded and encoded at a time (default 64)")
    shared.add_argument("--seed", metavar="N", type=int, default=0,
                        help="seed of --model's random weights and of data splits (default 0)")
    shared.add_argument("--json", metavar="FILE", help="also write the results to this file")
    shared.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    common = argparse.ArgumentParser(add_help=False, parents=[shared])
    which = common.add_mutually_exclusive_group(required=True)
    which.add_argument("--weights", metavar="PATH_OR_NAME",
                       help="weights to evaluate: a released name (e.g. ViT-B/32) or a .pt, "
                            ".npz, .safetensors file or Hugging Face folder")
    which.add_argument("--model", metavar="NAME",
                       help="a configuration with random weights instead (a baseline, or a "
                            f"quick test): {', '.join(available_configs())}")
    templates = argparse.ArgumentParser(add_help=False)
    templates.add_argument("--templates", metavar="FILE",
                           help="prompt templates, one per line with {} for the class name "
                                f"(default: {len(DEFAULT_TEMPLATES)} generic ones, "
                                f"'{DEFAULT_TEMPLATES[0]}', ...)")

    parser = argparse.ArgumentParser(
        prog=PROG, description="Evaluate a CLIP: zero-shot classification, linear probe, "
                               "image-text retrieval, labelling single images, or mixing a "
                               "fine-tuned CLIP with its start (WiSE-FT).",
        epilog="examples:\n"
               f"  {PROG} classify photos/ --weights ViT-B/32\n"
               f"  {PROG} classify test/ --train-dir train/ --linear-probe --weights m.npz\n"
               f"  {PROG} retrieval flickr/ --weights m.npz --json results.json\n"
               f"  {PROG} predict --labels 'cat,dog' cat.png --weights ViT-B/32\n"
               f"  {PROG} interpolate zs.npz run/checkpoint.npz --alpha 0.5 --out mixed.npz\n"
               f"  {PROG} wise-ft zs.npz run/checkpoint.npz --eval-dir clean/ --eval-dir "
               "shifted/\n"
               "Run a command with --help for its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classify = commands.add_parser(
        "classify", parents=[common, templates], help="zero-shot (and linear-probe) accuracy",
        description="Zero-shot top-1/top-5 on DIR: one sub-folder of images per class, its "
                    "name the class name (_ reads as a space).")
    classify.add_argument("folder", metavar="DIR", help="the images to classify")
    classify.add_argument("--linear-probe", action="store_true",
                          help="also fit a logistic regression on the frozen image features")
    classify.add_argument("--train-dir", metavar="DIR",
                          help="the probe's training images (same class folders as DIR); "
                               "without it, --test-fraction of DIR is held out for testing")
    classify.add_argument("--test-fraction", metavar="F", type=float, default=0.5,
                          help="without --train-dir: the fraction of each class of DIR that "
                               "both scores are measured on (default 0.5, seeded by --seed)")
    retrieval = commands.add_parser(
        "retrieval", parents=[common], help="image-text Recall@K, both ways",
        description="Recall@1/5/10 of images for captions and captions for images in DIR: "
                    "images plus captions.csv, .tsv or .jsonl with filename and caption "
                    "columns (several rows per image allowed).")
    retrieval.add_argument("folder", metavar="DIR", help="the images and their captions file")
    retrieval.add_argument("--captions", metavar="FILE",
                           help="the captions file in DIR (default: captions.csv, .tsv or .jsonl)")
    predict = commands.add_parser(
        "predict", parents=[common, templates], help="label single images",
        description="The most probable of --labels for each image, with probabilities.")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    predict.add_argument("--labels", required=True, help='comma-separated labels, e.g. "cat,dog"')
    predict.add_argument("--top-k", metavar="K", type=int, default=5,
                         help="labels shown per image (default 5)")
    mix = commands.add_parser(
        "interpolate", parents=[shared], help="WiSE-FT: mix two checkpoints in weight space",
        description="Write θ(α) = (1 - α)·ZERO_SHOT + α·FINE_TUNED, key by key, as an .npz "
                    "that miniclip.load reads. The two must have one architecture (the first "
                    "mismatched key is named) and should share an initialisation: FINE_TUNED "
                    "fine-tuned from ZERO_SHOT.")
    _add_checkpoint_pair(mix)
    mix.add_argument("--alpha", metavar="A", type=float, required=True,
                     help="the weight of FINE_TUNED, in [0, 1] (0: ZERO_SHOT itself)")
    mix.add_argument("--out", metavar="MIXED.npz", required=True, help="the file to write")
    wise_ft = commands.add_parser(
        "wise-ft", parents=[shared, templates], help="WiSE-FT: zero-shot accuracy against α",
        description="Zero-shot top-1 of θ(α) on each --eval-dir (class sub-folders, as for "
                    "classify) for each of --alphas, written to --json and a PNG plot. Give "
                    "the reference folder (the zero-shot model's distribution) and the "
                    "target one (the fine-tuning distribution).")
    _add_checkpoint_pair(wise_ft)
    wise_ft.add_argument("--alphas", metavar="A,B,...", type=_alphas,
                         default=_alphas(DEFAULT_ALPHAS),
                         help=f"the α to evaluate, comma-separated (default {DEFAULT_ALPHAS})")
    wise_ft.add_argument("--eval-dir", metavar="DIR", action="append", required=True,
                         help="a folder of class sub-folders to score; give it twice or more")
    wise_ft.add_argument("--plot", metavar="FILE", default="wise_ft.png",
                         help="the PNG of accuracy against α (default wise_ft.png; the "
                              "numbers go to --json, by default the PNG's name with .json)")
    return parser


#: The α of ``wise-ft`` by default, the WiSE-FT paper's coarse grid.
DEFAULT_ALPHAS = "0,0.25,0.5,0.75,1"


def _add_checkpoint_pair(command):
    command.add_argument("zero_shot", metavar="ZERO_SHOT",
                         help="the weights fine-tuning started from (any that miniclip.load "
                              "reads: a released name, .pt, .npz, .safetensors, a folder)")
    command.add_argument("fine_tuned", metavar="FINE_TUNED",
                         help="the fine-tuned weights (e.g. a run's checkpoint.npz)")


def _alphas(text):
    try:
        alphas = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers "
                                         "such as 0,0.5,1") from None
    if not alphas or any(not 0 <= a <= 1 for a in alphas):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more α in [0, 1], e.g. "
                                         f"{DEFAULT_ALPHAS}")
    return sorted(set(alphas))


def main(argv=None):
    """Run the command line ``argv``; returns the exit code (0 ok, 1 failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.command == "predict" and args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.command == "classify":
        if args.train_dir and not args.linear_probe:
            parser.error("--train-dir is for --linear-probe")
        if not 0 < args.test_fraction < 1:
            parser.error("--test-fraction must be between 0 and 1")

    def command():
        results, exit_code = COMMANDS[args.command](args)
        if args.json:
            _write_json(args.json, results)
        return exit_code

    return run_program(PROG, command, args.debug)


def _write_json(path, results):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path}")


def _load_model(args):
    """``(model, preprocess, tokenizer, results)`` for ``--weights`` or ``--model``;
    ``results`` starts the command's results with what was evaluated."""
    if args.weights:
        try:
            model, preprocess = load(args.weights, device=args.device)
        except RuntimeError as error:  # a download that failed
            raise InputError(f"{error}. Offline? Download the file elsewhere and pass its "
                             "path to --weights") from error
        described = args.weights
    else:
        if args.model not in available_configs():
            raise InputError(f"unknown --model {args.model!r}; choose one of "
                             f"{', '.join(available_configs())}")
        nn.manual_seed(args.seed)
        model = create_model(args.model).eval().to(args.device)
        preprocess = Preprocess(model.input_resolution)
        described = f"{args.model} with random weights (seed {args.seed})"
    print(f"model: {described}, {model.num_parameters():,} parameters, on {args.device}")
    tokenizer = tokenizer_for(model, args.tokenizer)
    return model, preprocess, tokenizer, {"command": args.command, "model": described}


def _templates(args):
    return read_templates(args.templates) if args.templates else list(DEFAULT_TEMPLATES)


def _count(number, noun):
    return f"{number} {noun}" + ("s" if number != 1 else "")


def _percent(fraction):
    return f"{100 * fraction:.1f}%"


def classify(args):
    folder = read_classification_folder(args.folder)
    train = read_classification_folder(args.train_dir) if args.train_dir else None
    if train is not None and train.classnames != folder.classnames:
        raise InputError(f"--train-dir {train.root} has the classes {train.classnames}, "
                         f"but {folder.root} has {folder.classnames}; they must match")
    templates = _templates(args)
    model, preprocess, tokenizer, results = _load_model(args)
    features, kept, skipped = encode_image_files(model, preprocess, folder.paths, args.batch_size)
    labels = folder.labels[kept]                                        # [N]
    num_classes = len(folder.classnames)
    print(f"{folder.root}: {len(kept)} images in {num_classes} classes"
          + (f" ({_count(len(skipped), 'unreadable file')} skipped)" if len(skipped) else ""))
    results.update(folder=str(folder.root), images=len(kept), classes=num_classes,
                   classnames=folder.classnames, skipped_images=[p for p, _ in skipped.entries],
                   templates=templates, chance_top1=1 / num_classes)
    if args.linear_probe:
        if train is not None:
            train_features, train_kept, _ = encode_image_files(model, preprocess, train.paths,
                                                               args.batch_size)
            train_labels = train.labels[train_kept]
        else:
            train_part, test_part = stratified_split(labels, args.test_fraction, args.seed)
            train_features, train_labels = features[train_part], labels[train_part]
            features, labels = features[test_part], labels[test_part]  # both scores on these
        probe = linear_probe(train_features, train_labels, features, labels, num_classes,
                             seed=args.seed)
    scores = zero_shot_scores(model, features, labels, folder.classnames, templates, tokenizer)
    results.update(test_images=len(labels), zeroshot_top1=scores["top1"],
                   zeroshot_top5=scores["top5"])
    print(f"zero-shot on {len(labels)} images ({len(templates)} templates): "
          f"top-1 {_percent(scores['top1'])}, top-5 {_percent(scores['top5'])} "
          f"(chance {_percent(1 / num_classes)})")
    if args.linear_probe:
        results.update(linear_probe_top1=probe["top1"], linear_probe_l2=probe["l2"],
                       linear_probe_train_images=probe["train_size"],
                       linear_probe_validation_top1={f"{l2:g}": top1 for l2, top1
                                                     in probe["validation_top1"].items()})
        print(f"linear probe: top-1 {_percent(probe['top1'])} (trained on "
              f"{probe['train_size']} images, L2 strength {probe['l2']:g} chosen on a "
              "validation split)")
    return results, 0


def retrieval(args):
    folder = read_caption_folder(args.folder, args.captions)
    model, preprocess, tokenizer, results = _load_model(args)
    image_features, kept, skipped = encode_image_files(model, preprocess, folder.paths,
                                                       args.batch_size)     # [N_img, E]
    captions = [folder.captions[i] for i in kept]
    texts = [caption for per_image in captions for caption in per_image]
    text_image = np.repeat(np.arange(len(captions)), [len(c) for c in captions])  # [N_txt]
    text_features = encode_texts(model, tokenizer(texts), args.batch_size)  # [N_txt, E]
    recalls = retrieval_recall(image_features @ text_features.T, text_image)
    notes = [f"{_count(count, what)} skipped" for count, what in
             ((len(skipped), "unreadable image"), (len(folder.skipped_rows), "caption row"))
             if count]
    print(f"{folder.root}: {len(captions)} images, {len(texts)} captions"
          + (f" ({', '.join(notes)})" if notes else ""))
    for direction, name in (("i2t", "image -> text"), ("t2i", "text -> image")):
        print(f"{name}: " + "  ".join(f"R@{k} {_percent(recalls[f'{direction}_R@{k}'])}"
                                      for k in RECALL_AT))
    results.update(folder=str(folder.root), images=len(captions), captions=len(texts),
                   skipped_images=[p for p, _ in skipped.entries],
                   blank_captions=len(folder.skipped_rows), **recalls)
    return results, 0


def predict(args):
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise InputError('--labels needs at least one label, e.g. --labels "cat,dog"')
    model, preprocess, tokenizer, results = _load_model(args)
    classifier = zero_shot_classifier(model, labels, _templates(args), tokenizer)  # [E, K]
    skipped, predictions = Skipped(), []
    for indices, images in preprocess_in_batches(args.images, preprocess, args.batch_size,
                                                 skipped):
        probabilities = zero_shot_predict(model, images, classifier, args.batch_size)  # [n, K]
        for index, row in zip(indices, probabilities):
            best = np.argsort(-row, kind="stable")[:args.top_k]
            print(args.images[index])
            for label in best:
                print(f"  {_percent(row[label]):>6}  {labels[label]}")
            predictions.append({"image": args.images[index], "labels": [
                {"label": labels[label], "probability": float(row[label])} for label in best]})
    skipped.warn(len(args.images))
    if not predictions:
        raise InputError(f"none of the {len(args.images)} images could be read")
    results.update(labels=labels, predictions=predictions,
                   skipped_images=[p for p, _ in skipped.entries])
    return results, 1 if len(skipped) else 0


def _checkpoint_pair(args):
    """The model weights of ZERO_SHOT and FINE_TUNED, checked to have one architecture."""
    try:
        pair = model_state(args.zero_shot), model_state(args.fine_tuned)
    except RuntimeError as error:  # a download that failed
        raise InputError(f"{error}. Offline? Download the file elsewhere and pass its "
                         "path instead") from error
    mismatch = first_mismatch(*pair)
    if mismatch:
        raise InputError(f"{args.zero_shot} and {args.fine_tuned} have different "
                         f"architectures: {mismatch}; mix a fine-tuned model with the weights "
                         "it started from")
    return pair


def interpolate_checkpoints(args):
    mixed = interpolate(*_checkpoint_pair(args), args.alpha)
    save_npz(args.out, mixed)
    print(f"wrote {args.out}: {1 - args.alpha:g} x {args.zero_shot} + {args.alpha:g} x "
          f"{args.fine_tuned} ({len(mixed)} arrays); load it with miniclip.load({args.out!r})")
    return {"command": args.command, "zero_shot": args.zero_shot,
            "fine_tuned": args.fine_tuned, "alpha": args.alpha, "out": args.out}, 0


def wise_ft(args):
    folders = [read_classification_folder(folder) for folder in args.eval_dir]
    templates = _templates(args)
    zero_shot, fine_tuned = _checkpoint_pair(args)

    def evaluate(model):
        model.to(args.device)
        tokenizer = tokenizer_for(model, args.tokenizer)
        preprocess = Preprocess(model.input_resolution)
        top1 = {}
        for given, folder in zip(args.eval_dir, folders):
            features, kept, _ = encode_image_files(model, preprocess, folder.paths,
                                                   args.batch_size)
            top1[given] = zero_shot_scores(model, features, folder.labels[kept],
                                           folder.classnames, templates, tokenizer)["top1"]
        return top1

    rows = sweep(zero_shot, fine_tuned, args.alphas, evaluate)
    accuracies = {given: [row[given] for row in rows] for given in args.eval_dir}
    means = np.mean(list(accuracies.values()), axis=0).tolist()              # [A]
    best, beats_both = best_alpha(args.alphas, means)
    widths = [max(len(given), 6) for given in args.eval_dir]
    print("zero-shot top-1 of (1 - α)·zero-shot + α·fine-tuned:")
    print("  α      " + "  ".join(f"{given:>{width}}" for given, width
                                  in zip(args.eval_dir, widths)) + "    mean")
    for row, mean in zip(rows, means):
        print(f"  {row['alpha']:<5g}  " + "  ".join(f"{_percent(row[given]):>{width}}" for
                                                    given, width in zip(args.eval_dir, widths))
              + f"  {_percent(mean):>6}")
    print(f"best mean at α = {best:g}: {_percent(max(means))}, "
          + ("above both ends" if beats_both else "not above both ends"))
    plot_sweep(args.plot, args.alphas, accuracies)
    print(f"plot written to {args.plot}")
    args.json = args.json or str(Path(args.plot).with_suffix(".json"))  # main writes it
    return {"command": args.command, "zero_shot": args.zero_shot,
            "fine_tuned": args.fine_tuned, "alphas": args.alphas, "eval_dirs": args.eval_dir,
            "templates": templates, "top1": accuracies, "mean_top1": means,
            "best_alpha": best, "best_beats_both_ends": beats_both, "plot": args.plot}, 0


COMMANDS = {"classify": classify, "retrieval": retrieval, "predict": predict,
            "interpolate": interpolate_checkpoints, "wise-ft": wise_ft}

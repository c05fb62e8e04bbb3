"""What a training run is told to do: ``RunConfig``, resolved once from the command line.

The parsed arguments are never changed as the run goes. Everything the run decides
(the model's name, the run folder, a resumed run's schedule) lives in a ``RunConfig``,
a frozen record: a change is a new record (``dataclasses.replace``), made where it is
decided, so what any part of the run reads is what was decided before it.
"""
import dataclasses
import os
import time
from typing import Optional

#: The teaching preset ``--tiny`` trains, per image tower.
TINY_MODELS = {"vit": "tiny-vit", "rn": "tiny-rn"}

#: Default number of steps and batch size, per image tower, at a peak rate of 1e-3: 800
#: batches of 64 suit the ViT because more negatives per batch teach it to tell apart pairs
#: that share a colour or a shape, and the ResNet's slower steps take batches of 32.
DEFAULT_STEPS = {"vit": 800, "rn": 800}
DEFAULT_BATCH = {"vit": 64, "rn": 32}

#: Synthetic training pictures, drawn once: enough that the default run sees each about
#: three times, so that it learns shapes rather than the pictures themselves.
DEFAULT_TRAIN_SIZE = 16384

#: The losses ``--loss`` chooses from: CLIP's softmax contrast, SigLIP's pairwise sigmoid.
LOSSES = ("clip", "siglip")

#: What a run folder holds.
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.json"
CURVES_PLOT, SIMILARITY_PLOT, PREDICTIONS_PLOT = ("training_curves.png", "similarity.png",
                                                  "predictions.png")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A training run's settings (``python -m miniclip.train --help`` describes each).

    ``steps`` and ``warmup`` are None for a resumed run until its checkpoint is read
    (``resume.py``); ``out`` is always a folder.
    """

    model: str
    steps: Optional[int]
    batch_size: int
    lr: float
    warmup: Optional[int]
    weight_decay: float
    grad_clip: float
    seed: int
    device: str
    amp: bool
    threads: Optional[int]
    train_size: int
    eval_size: int
    eval_every: int
    data: Optional[str]
    captions: Optional[str]
    augment: bool
    prefetch: int
    out: str
    overwrite: bool
    save_every: int
    resume: bool
    log_every: int
    quiet: bool
    distributed: bool
    init_from: Optional[str]
    tokenizer: Optional[str]
    tower: Optional[str]       # as given: --init-from checks it against its weights
    lock_image: bool
    lock_text: bool
    train_shift: Optional[str]
    loss: str = "clip"

    @classmethod
    def from_args(cls, args):
        """The run that the parsed command line ``args`` asks for (``cli.parse_args``)."""
        given = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls)
                 if hasattr(args, field.name)}
        # --init-from weights bring their architecture; a --model given too is checked
        tiny = args.tiny and not args.init_from
        given.update(model=TINY_MODELS[args.tower or "vit"] if tiny else args.model,
                     augment=not args.no_augment, out=args.out or default_run_folder())
        return cls(**given)


def default_run_folder(root="runs"):
    """``runs/<date>-<time>``, with a counter if a run of the same second exists."""
    base = os.path.join(root, time.strftime("%Y%m%d-%H%M%S"))
    folder, number = base, 1
    while os.path.exists(folder):
        number += 1
        folder = f"{base}-{number}"
    return folder

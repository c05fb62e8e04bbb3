"""Print how closely miniclip reproduces OpenAI's ``clip/model.py`` on the committed micro
models (``tests/fixtures/reference_models.npz``, made by ``scripts/make_model_fixtures.py``).

Each figure is the largest error relative to the largest reference value: image features
and logits in eval and train mode (float32), and the float64 gradients of the paper's loss
(over the parameters whose gradient is not zero in exact arithmetic). No torch needed:

    python scripts/reference_parity_errors.py
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]  # miniclip, and the fixtures' readers

from test_reference_parity import GOLDEN, KINDS, TOKENS, checkpoint, golden, images  # noqa: E402

from miniclip.autograd import no_grad  # noqa: E402
from miniclip.models import build_model  # noqa: E402
from miniclip.training.loss import clip_loss  # noqa: E402


def relative_error(actual, expected):
    expected = np.asarray(expected, np.float64)
    return np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max()


def main():
    for kind in KINDS:
        for mode in ("eval", "train"):
            errors = []
            for output in ("image_features", "logits_per_image"):
                model = build_model(checkpoint(kind)).train(mode == "train")
                with no_grad():
                    got = (model.encode_image(images(kind)) if output == "image_features"
                           else model(images(kind), TOKENS)[0]).numpy()
                errors.append(relative_error(got, GOLDEN[f"{kind}/{mode}/{output}"]))
            print(f"{kind} {mode:5s}: image features {errors[0]:.1e}, logits {errors[1]:.1e}")
        model = build_model(checkpoint(kind)).double().train()
        clip_loss(*model(images(kind).astype(np.float64), TOKENS)).backward()
        params = dict(model.named_parameters())
        nonzero = {name: expected for name, expected in golden(f"{kind}/grad/").items()
                   if np.abs(expected).max() > 1e-12}
        worst = max(relative_error(params[name].grad, e) for name, e in nonzero.items())
        print(f"{kind} float64 loss gradients: {worst:.1e} at worst over {len(nonzero)} parameters")


if __name__ == "__main__":
    main()

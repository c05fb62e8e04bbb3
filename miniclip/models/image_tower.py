"""CLIP's image tower on its own, for the objectives that pair it with another text side
(``bag_of_words.py``, ``captioner.py``) or with none (:class:`ImageClassifier`): the same
tower, started from the same weights."""

from .. import nn
from ..autograd import Tensor
from .configs import create_model


def image_tower(name="tiny-vit"):
    """The image tower (``visual``) of a new ``create_model(name)``: for one seed of NumPy's
    generator, the very weights a CLIP of that configuration would start from, so every
    objective trained from that seed starts from the same image tower."""
    return create_model(name).visual


def images_like(images, like):
    """``images`` (an array of any device, or a Tensor) as a Tensor on the device and in the
    dtype of the tensor ``like``."""
    images = images if isinstance(images, Tensor) else Tensor(images)  # device arrays stay put
    if images.device is not like.device:
        images = images.to(like.device)
    return images if images.dtype == like.dtype else images.to(like.dtype)


class ImageClassifier(nn.Module):
    """The supervised baseline of the paper's robustness study: an image tower and a linear
    head, images ``[N, 3, R, R]`` -> class logits ``[N, K]``, trained with cross-entropy on
    the labels."""

    def __init__(self, visual, num_classes):
        super().__init__()
        self.visual = visual
        self.head = nn.Linear(visual.output_dim, num_classes)

    def encode_image(self, images):
        return self.visual(images_like(images, self.head.weight))           # [N, E]

    def forward(self, images):
        return self.head(self.encode_image(images))                         # [N, K]

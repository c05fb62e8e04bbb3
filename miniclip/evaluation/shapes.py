"""The tiny run's benchmark: what a CLIP trained on ``SyntheticShapes`` has learned.

Four measures, on pictures drawn once from the test split (``data/synthetic.py``):

* **zero-shot top-1** over all 30 colour–shape classes, scored separately on the test
  pictures of the 24 *seen* combinations and of the 6 *held-out* ones (``HELD_OUT``:
  never pictured nor named in training). Every picture competes against all 30 class
  prompts, so a held-out picture counts as right only if the model prefers the unseen
  name ("blue circle") to the seen ones it was trained on ("blue square", "green
  circle"): transfer, not recall of trained phrases;
* the same zero-shot top-1 on **shifted** pictures (outline-only shapes, heavy noise,
  striped backgrounds), all 30 classes, as in the paper's distribution-shift study;
* image->text and text->image **retrieval** Recall@1/5 between test pictures and their
  own captions (several pictures can share a caption's words: such ties count against);
* a **linear probe** (``linear_probe.py``) on the frozen image features: fitted on half
  of the test pictures, scored on the other half, all 30 classes.
"""
import numpy as np

from ..data import ArrayDataset, SyntheticShapes
from ..data.synthetic import HELD_OUT, SHIFTS
from .linear_probe import linear_probe, stratified_split
from .retrieval import retrieval_recall
from .zeroshot import accuracy, encode_images, encode_texts, zero_shot_classifier

#: Retrieval uses the first this-many test pictures and their captions.
RETRIEVAL_SIZE = 200


class ShapesBenchmark:
    """The test pictures of one seed, preprocessed once, and the measures above.

    Args:
        image_size: the model's input resolution.
        collate: a ``data.CLIPCollate`` (preprocessing and the model's tokenizer).
        size: test pictures (seen and held-out combinations, drawn uniformly from all 30).
        shifted_size: pictures per shifted set.
        seed: the data seed (the run's).
    """

    def __init__(self, image_size, collate, size=900, shifted_size=300, seed=0):
        self.tokenize = collate.tokenize
        self.test_set = SyntheticShapes(size, image_size, split="test", seed=seed)
        self.classnames, self.templates = self.test_set.classnames, self.test_set.templates
        self.images, self.tokens = ArrayDataset.prepare(self.test_set, collate).arrays
        self.labels = self.test_set.labels()                                   # [N]
        self.unseen = np.isin(self.labels, self.test_set.held_out_classes())   # [N] bool
        self.shifted = {}
        for shift in SHIFTS:
            shifted = SyntheticShapes(shifted_size, image_size, split="test", seed=seed,
                                      shift=shift)
            self.shifted[shift] = (ArrayDataset.prepare(shifted, collate).arrays[0],
                                   shifted.labels())

    @property
    def class_set(self):
        """A sentence saying what the zero-shot scores are scores of."""
        held_out = ", ".join(f"{c} {s}" for c, s in HELD_OUT)
        return (f"{len(self.classnames)} classes (all colour-shape pairs); seen: "
                f"{int((~self.unseen).sum())} test pictures of the {len(self.classnames) - len(HELD_OUT)} "
                f"trained pairs; unseen: {int(self.unseen.sum())} of the {len(HELD_OUT)} held-out "
                f"pairs ({held_out})")

    def classifier(self, model):
        """The zero-shot classifier ``[E, 30]`` of the class prompts."""
        return zero_shot_classifier(model, self.classnames, self.templates, self.tokenize)

    def zero_shot(self, model):
        """Zero-shot top-1 on the seen and the held-out test pictures, and on all of them:
        ``{"zeroshot_top1_seen": ..., "zeroshot_top1_unseen": ..., "zeroshot_top1": ...}``
        (cheap enough to run during training, ``--eval-every``)."""
        model.eval()
        try:
            scores = encode_images(model, self.images) @ self.classifier(model)    # [N, 30]
        finally:
            model.train()
        return self.zero_shot_metrics(scores)

    def zero_shot_metrics(self, scores):
        """The three zero-shot scores of similarities ``scores [N, 30]`` of the test
        pictures to the class prompts."""
        seen = ~self.unseen
        return {"zeroshot_top1_seen": accuracy(scores[seen], self.labels[seen]),
                "zeroshot_top1_unseen": accuracy(scores[self.unseen], self.labels[self.unseen]),
                "zeroshot_top1": accuracy(scores, self.labels)}

    def evaluate(self, model):
        """Every measure, as ``(metrics, details)``: ``metrics`` a flat dict of floats
        (``zeroshot_top1_seen``, ``zeroshot_top1_outline``, ``i2t_R@1``,
        ``linear_probe_top1``, …), ``details`` the arrays the plots need: ``scores``
        ``[N, 30]`` zero-shot similarities, ``similarity`` ``[n, n]`` of the first ``n``
        pictures and their captions. The model is evaluated in eval mode (a ResNet's batch
        norms use running statistics) and put back in training mode."""
        model.eval()
        try:
            classifier = self.classifier(model)                                 # [E, 30]
            features = encode_images(model, self.images)                      # [N, E]
            scores = features @ classifier                                     # [N, 30]
            metrics = self.zero_shot_metrics(scores)
            for shift, (images, labels) in self.shifted.items():
                metrics[f"zeroshot_top1_{shift}"] = accuracy(
                    encode_images(model, images) @ classifier, labels)
            count = min(RETRIEVAL_SIZE, len(self.images))
            similarity = features[:count] @ encode_texts(model, self.tokens[:count]).T  # [n, n]
            metrics.update(retrieval_recall(similarity, np.arange(count), ks=(1, 5)))
            fit, held = stratified_split(self.labels, 0.5, seed=self.test_set.seed)
            probe = linear_probe(features[fit], self.labels[fit], features[held],
                                 self.labels[held], len(self.classnames), max_iterations=200)
            metrics["linear_probe_top1"] = probe["top1"]
        finally:
            model.train()
        return metrics, {"scores": scores, "similarity": similarity}

"""Zero-shot classification scores of image features, with prompt ensembling.

The classifier is ``miniclip.evaluation.zeroshot.zero_shot_classifier``: every class name is written
into each template, the sentences embedded, and each class's embeddings averaged (the
paper's prompt ensembling). Here it is scored on features computed once
(:func:`miniclip.evaluation.features.encode_image_files`), by top-1 and top-5 accuracy.
"""
from pathlib import Path

from .zeroshot import accuracy, zero_shot_classifier

#: Generic prompts, a few of the CLIP paper's ImageNet ensemble that suit most photo
#: datasets. Replace them with ``read_templates`` (or ``--templates FILE``) for others.
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "a drawing of a {}.",
    "itap of a {}.",
)


def read_templates(path):
    """Prompt templates from a text file, one per line, each with one ``{}`` for the class
    name. Blank lines and lines starting with ``#`` are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such templates file: {path}")
    templates = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.count("{}") != 1:
            raise ValueError(f"{path}, line {number}: a template needs exactly one {{}} where "
                             f"the class name goes, got {line!r}")
        templates.append(line)
    if not templates:
        raise ValueError(f"{path} holds no templates")
    return templates


def zero_shot_scores(model, image_features, labels, classnames, templates, tokenizer):
    """Zero-shot top-1 and top-5 accuracy of ``image_features [N, E]`` (unit length)
    against ``labels [N]``: ``{"top1": ..., "top5": ...}``.

    With five classes or fewer top-5 is 1 by definition. The logit scale does not change
    the ranking, so plain cosine similarities are ranked.
    """
    classifier = zero_shot_classifier(model, classnames, templates, tokenizer)  # [E, K]
    similarities = image_features @ classifier                                   # [N, K]
    return {"top1": accuracy(similarities, labels, k=1),
            "top5": accuracy(similarities, labels, k=5)}

"""Evaluating a CLIP: zero-shot classification, retrieval and linear probes.

The three measures of the CLIP paper, on folders of real images, each on frozen
unit-length embeddings computed once:

* the folders (an image-classification folder in ``ImageFolder`` layout, an image–caption
  folder with ``captions.csv``/``.tsv``/``.jsonl``) are read by ``miniclip.data``, which
  training shares, skipping unreadable images;
* ``features``: image files -> embeddings, and the tokenizer that fits a model;
* ``classification``: zero-shot top-1/top-5 with prompt ensembling;
* ``retrieval``: image->text and text->image Recall@K;
* ``linear_probe``: multinomial logistic regression (L-BFGS on NumPy), its L2 strength
  chosen on a validation split;
* ``wise_ft``: WiSE-FT, the weight-space mix of a fine-tuned model and the one it started
  from, and its sweep over the mixing weight α;
* ``cli``: ``python -m miniclip.evaluation classify | retrieval | predict | interpolate |
  wise-ft``;
* ``shapes``: all of them on the synthetic shapes, the tiny training run's benchmark (seen
  and held-out colour–shape pairs, shifted pictures).
"""
from ..data import read_caption_folder, read_classification_folder, read_image
from .classification import DEFAULT_TEMPLATES, read_templates, zero_shot_scores
from .features import encode_image_files, tokenizer_for
from .linear_probe import LogisticRegression, linear_probe, stratified_split
from .retrieval import retrieval_ranks, retrieval_recall

__all__ = [
    "DEFAULT_TEMPLATES", "LogisticRegression", "encode_image_files", "linear_probe",
    "read_caption_folder", "read_classification_folder", "read_image", "read_templates",
    "retrieval_ranks", "retrieval_recall", "stratified_split", "tokenizer_for",
    "zero_shot_scores",
]

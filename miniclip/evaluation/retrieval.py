"""Image–text retrieval: Recall@K in both directions, as in the CLIP paper's Table 13.

Given the cosine similarities ``S [N_img, N_txt]`` of every image with every caption, and
which image each caption describes (``text_image [N_txt]``; an image may have several
captions, as in COCO's five), retrieval asks of each query whether a correct answer is
among its ``K`` most similar candidates:

* **image -> text**: image ``i`` ranks all captions by ``S[i, :]``; it scores a hit at
  ``K`` when *any* of its own captions is in the top ``K``. Its rank is the number of other
  images' captions at least as similar as its best own caption:
  ``rank_i = #{t : text_image[t] != i, S[i, t] >= max_{t' : text_image[t'] = i} S[i, t']}``.
* **text -> image**: caption ``t`` ranks all images by ``S[:, t]``; it has one correct
  image, ``j = text_image[t]``, and ``rank_t = #{i != j : S[i, t] >= S[j, t]}``.

A hit at ``K`` is ``rank < K`` and Recall@K is the fraction of queries that hit. Ties are
counted against the query (``>=``), so a model whose embeddings are all equal scores the
chance rate, not a perfect one.
"""
import numpy as np

#: The cut-offs reported, as in the paper.
RECALL_AT = (1, 5, 10)


def retrieval_ranks(similarity, text_image):
    """The rank of the first correct answer of every query, from 0 (best).

    Args:
        similarity: ``[N_img, N_txt]`` image–text similarities.
        text_image: ``[N_txt]`` the index of the image each text describes; every image
            must have at least one text.

    Returns ``(image_to_text [N_img], text_to_image [N_txt])`` int64 ranks.
    """
    similarity = np.asarray(similarity)
    text_image = np.asarray(text_image)
    num_images, num_texts = similarity.shape
    if text_image.shape != (num_texts,):
        raise ValueError(f"text_image must have one entry per text ({num_texts}), "
                         f"got shape {text_image.shape}")
    own = text_image[None, :] == np.arange(num_images)[:, None]          # [N_img, N_txt]
    uncaptioned = np.flatnonzero(~own.any(axis=1))
    if uncaptioned.size:
        raise ValueError(f"images {uncaptioned[:5].tolist()} have no text")
    best_own = np.where(own, similarity, -np.inf).max(axis=1)             # [N_img]
    image_to_text = ((similarity >= best_own[:, None]) & ~own).sum(axis=1)
    own_image = similarity[text_image, np.arange(num_texts)]              # [N_txt]
    # every caption's own image is counted by ">=" too: subtract it
    text_to_image = (similarity >= own_image[None, :]).sum(axis=0) - 1
    return image_to_text.astype(np.int64), text_to_image.astype(np.int64)


def retrieval_recall(similarity, text_image, ks=RECALL_AT):
    """Recall@K both ways: ``{"i2t_R@1": ..., "t2i_R@1": ..., ...}`` (fractions in [0, 1]).

    ``similarity [N_img, N_txt]`` and ``text_image [N_txt]`` as in :func:`retrieval_ranks`.
    """
    image_to_text, text_to_image = retrieval_ranks(similarity, text_image)
    recalls = {}
    for direction, ranks in (("i2t", image_to_text), ("t2i", text_to_image)):
        for k in ks:
            recalls[f"{direction}_R@{k}"] = float((ranks < k).mean())
    return recalls

"""The evaluation library: retrieval recall on hand-made similarities, the linear probe's
gradient, optimiser and choice of L2 strength, and reading classification folders (class
names, unreadable files skipped). Captions files are ``miniclip.data``'s, tested in
test_data.py; image modes in test_preprocess.py."""
import importlib

import numpy as np
import pytest
from PIL import Image

from miniclip import Preprocess, create_model, nn
from miniclip.evaluation import (
    encode_image_files,
    linear_probe,
    read_classification_folder,
    read_templates,
    retrieval_ranks,
    retrieval_recall,
    stratified_split,
    tokenizer_for,
)

# the package re-exports the function linear_probe under the module's name
probe_module = importlib.import_module("miniclip.evaluation.linear_probe")


# ----------------------------------------------------------------------------- retrieval
# 3 images, 5 texts: texts 0 and 1 describe image 0, text 2 image 1, texts 3 and 4 image 2.
TEXT_IMAGE = np.array([0, 0, 1, 2, 2])
SIMILARITY = np.array([[0.9, 0.1, 0.8, 0.2, 0.3],    # best own 0.9: nothing above -> rank 0
                       [0.5, 0.6, 0.4, 0.7, 0.1],    # own 0.4: 0.5, 0.6, 0.7 above -> rank 3
                       [0.2, 0.9, 0.3, 0.1, 0.5]])   # best own 0.5: 0.9 above -> rank 1


def test_recall_counts_an_image_hit_when_any_of_its_captions_ranks_in_the_top_k():
    image_to_text, text_to_image = retrieval_ranks(SIMILARITY, TEXT_IMAGE)
    np.testing.assert_array_equal(image_to_text, [0, 3, 1])
    # columns: text 0 own 0.9 (rank 0), text 1 own 0.1 below 0.6 and 0.9 (rank 2), text 2
    # own 0.4 below 0.8 (1), text 3 own 0.1 below 0.2 and 0.7 (2), text 4 own 0.5 (0)
    np.testing.assert_array_equal(text_to_image, [0, 2, 1, 2, 0])
    assert retrieval_recall(SIMILARITY, TEXT_IMAGE, ks=(1, 2, 5)) == pytest.approx({
        "i2t_R@1": 1 / 3, "i2t_R@2": 2 / 3, "i2t_R@5": 1.0,
        "t2i_R@1": 2 / 5, "t2i_R@2": 3 / 5, "t2i_R@5": 1.0})


def test_recall_counts_ties_against_the_query():
    recalls = retrieval_recall(np.zeros((3, 5)), TEXT_IMAGE, ks=(1, 3))
    assert recalls == {"i2t_R@1": 0.0, "i2t_R@3": 0.0, "t2i_R@1": 0.0, "t2i_R@3": 1.0}


def test_recall_refuses_an_image_without_captions():
    with pytest.raises(ValueError, match=r"images \[1\] have no text"):
        retrieval_recall(np.zeros((2, 2)), np.array([0, 0]))


# ----------------------------------------------------------------------------- linear probe
def unit_rows(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(rng, num_classes, per_class, dim=16, spread=0.3, counts=None):
    """Unit-length features in well-separated clusters, one per class: ``(X [N, D], y [N])``."""
    centres = 3 * unit_rows(np.random.default_rng(99).normal(size=(num_classes, dim)))
    counts = counts or [per_class] * num_classes
    labels = np.repeat(np.arange(num_classes), counts)
    return unit_rows(centres[labels] + spread * rng.normal(size=(len(labels), dim))), labels


def test_logistic_gradient_matches_central_finite_differences():
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(7, 4)), rng.integers(0, 3, size=7)
    params = rng.normal(size=(4 + 1) * 3)
    _, gradient = probe_module.logistic_loss_and_gradient(params, features, labels, 3, l2=0.3)
    step, numeric = 1e-6, np.empty_like(params)
    for i in range(len(params)):
        delta = np.zeros_like(params)
        delta[i] = step
        plus = probe_module.logistic_loss_and_gradient(params + delta, features, labels, 3, 0.3)
        minus = probe_module.logistic_loss_and_gradient(params - delta, features, labels, 3, 0.3)
        numeric[i] = (plus[0] - minus[0]) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)


def test_lbfgs_reaches_the_minimum_of_the_regularised_objective():
    features, labels = blobs(np.random.default_rng(1), 3, 20, spread=1.0)
    probe = probe_module.LogisticRegression(3, l2=0.1).fit(features, labels)
    _, gradient = probe_module.logistic_loss_and_gradient(probe.params, features, labels, 3, 0.1)
    assert np.abs(gradient).max() < 1e-6


def test_lbfgs_direction_is_minus_the_bfgs_inverse_hessian_times_the_gradient():
    rng = np.random.default_rng(5)
    root = rng.normal(size=(4, 4))
    hessian = root @ root.T + np.eye(4)                                   # [4, 4]
    steps = [rng.normal(size=4) for _ in range(3)]
    history = [(s, hessian @ s, 1 / (s @ hessian @ s)) for s in steps]
    s, y, _ = history[-1]
    inverse = np.eye(4) * (s @ y) / (y @ y)
    for s, y, rho in history:  # the BFGS update, as matrices
        v = np.eye(4) - rho * np.outer(y, s)
        inverse = v.T @ inverse @ v + rho * np.outer(s, s)
    gradient = rng.normal(size=4)
    np.testing.assert_allclose(probe_module.lbfgs_direction(gradient, history),
                               -inverse @ gradient, rtol=1e-10)


def rosenbrock(x):
    """The curved valley ``(1 - x0)^2 + 100 (x1 - x0^2)^2``, minimum 0 at (1, 1), and its gradient."""
    value = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    gradient = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                         200 * (x[1] - x[0] ** 2)])
    return value, gradient


def test_lbfgs_follows_a_curved_valley_to_its_minimum_in_few_steps():
    # plain gradient descent needs thousands of steps here; a full step without the line
    # search diverges
    np.testing.assert_allclose(
        probe_module.minimize_lbfgs(rosenbrock, [-1.2, 1.0], max_iterations=45), [1.0, 1.0],
        atol=1e-5)


def test_probe_classifies_separable_clusters():
    rng = np.random.default_rng(2)
    train, test = blobs(rng, 4, 15), blobs(rng, 4, 25)
    result = linear_probe(*train, *test, num_classes=4)
    assert result["top1"] >= 0.98
    assert result["train_size"] == 60 and result["test_size"] == 100
    assert set(result["validation_top1"]) == set(probe_module.L2_GRID)


def test_probe_picks_the_l2_strength_with_the_best_validation_accuracy():
    # 3:1 imbalanced classes: a huge penalty leaves only the bias, which says "class 0"
    rng = np.random.default_rng(3)
    train, test = blobs(rng, 2, 0, counts=[30, 10]), blobs(rng, 2, 0, counts=[30, 10])
    result = linear_probe(*train, *test, num_classes=2, l2_grid=(1e4, 1e-3))
    assert result["validation_top1"] == {1e4: 0.75, 1e-3: 1.0}
    assert result["l2"] == 1e-3 and result["top1"] == 1.0


def test_probe_breaks_accuracy_ties_by_the_lower_validation_loss():
    rng = np.random.default_rng(4)
    train, test = blobs(rng, 2, 20), blobs(rng, 2, 20)
    result = linear_probe(*train, *test, num_classes=2, l2_grid=(1e2, 1e-3, 1e1))
    assert set(result["validation_top1"].values()) == {1.0}  # a tie in accuracy
    assert result["l2"] == 1e-3  # the weakest penalty fits the clusters with the most confidence


def test_stratified_split_holds_out_a_fraction_of_every_class_but_never_all():
    labels = np.array([0] * 10 + [1] * 4 + [2])
    rest, held_out = stratified_split(labels, 0.6, seed=0)
    assert np.bincount(labels[held_out], minlength=3).tolist() == [6, 2, 0]  # 0.6 of 1 is 1
    assert sorted(np.concatenate([rest, held_out]).tolist()) == list(range(15))
    np.testing.assert_array_equal(stratified_split(labels, 0.6, seed=0)[1], held_out)
    assert not np.array_equal(stratified_split(labels, 0.6, seed=1)[1], held_out)


# ----------------------------------------------------------------------------- folders
def save_image(path, colour=(200, 30, 30), size=32, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).convert(mode).save(path)
    return path


def test_classification_folder_names_classes_after_their_folders(tmp_path):
    save_image(tmp_path / "tabby_cat" / "a.png")
    save_image(tmp_path / "tabby_cat" / "more" / "b.jpg")
    save_image(tmp_path / "dog" / "c.PNG")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    save_image(tmp_path / "dog" / ".hidden.png")
    save_image(tmp_path / ".ipynb_checkpoints" / "d.png")
    folder = read_classification_folder(tmp_path)
    assert folder.classnames == ["dog", "tabby cat"]
    assert [p.relative_to(tmp_path).as_posix() for p in folder.paths] == [
        "dog/c.PNG", "tabby_cat/a.png", "tabby_cat/more/b.jpg"]
    assert folder.labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "has no sub-folders"),
    (lambda root: (root / "cat").mkdir(parents=True), "no image files"),
])
def test_classification_folder_errors_say_what_is_missing(tmp_path, make, message):
    make(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=message):
        read_classification_folder(tmp_path / "data")


def test_unreadable_images_are_skipped_counted_and_named(tmp_path):
    good = [save_image(tmp_path / f"{i}.png") for i in range(3)]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"definitely not a PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[0].read_bytes()[:60])
    paths = [good[0], corrupt, good[1], tmp_path / "missing.png", truncated, good[2]]
    nn.manual_seed(0)
    model = create_model("tiny-vit").eval()
    with pytest.warns(UserWarning, match=r"skipped 3 of 6 image files") as caught:
        features, indices, skipped = encode_image_files(model, Preprocess(32), paths,
                                                        batch_size=2)
    assert indices.tolist() == [0, 2, 5]
    assert features.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    assert [path for path, _ in skipped.entries] == [str(p) for p in paths if p not in good]
    assert all(str(p) in str(caught[0].message) for p in (corrupt, truncated))


# ----------------------------------------------------------------------------- prompts, tokens
def test_templates_file_skips_comments_and_needs_one_placeholder(tmp_path):
    path = tmp_path / "templates.txt"
    path.write_text("# mine\na sketch of a {}.\n\nitap of a {}.\n")
    assert read_templates(path) == ["a sketch of a {}.", "itap of a {}."]
    path.write_text("a sketch of a {}.\na sketch\n")
    with pytest.raises(ValueError, match=r"line 2: a template needs exactly one \{\}"):
        read_templates(path)


def test_tokenizer_is_chosen_by_vocabulary_size():
    tiny = create_model("tiny-vit")
    tokens = tokenizer_for(tiny)(["a photo of a red circle. " * 10])  # longer than 32: cut
    assert tokens.shape == (1, 32)
    with pytest.raises(ValueError, match="vocabulary has 1,000 ids"):
        tokenizer_for(create_model("tiny-vit", vocab_size=1000))

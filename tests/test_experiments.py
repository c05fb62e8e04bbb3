"""The paper's findings at toy scale (``miniclip/experiments``): the arithmetic each
experiment reads its claim off with, the model cache, and every experiment end to end at a
micro scale (too small to learn anything; the published numbers come from the full scale)."""
import json
import os

import numpy as np
import pytest

from miniclip.data import SyntheticShapes
from miniclip.experiments import compare_objectives, few_shot, prompts, robustness
from miniclip.experiments.cli import parse_args
from miniclip.experiments.context import Context, Scale, mean_and_spread
from miniclip.experiments.data import CaptionVocabulary, caption_words
from miniclip.experiments.objectives import OBJECTIVES

MICRO = Scale(seeds=2, train_size=48, test_size=40, shifted_size=12, steps=4, batch_size=8,
              sweep_batches=(4, 8), shots=(1, 2), draws=2, pool_size=90)


# ------------------------------------------------------------------ reading off the claims
def test_efficiency_is_how_many_times_fewer_images_reach_the_weaker_final_accuracy():
    images = np.array([100, 200, 300, 400])
    weaker = (images, np.array([[0.1, 0.2, 0.3, 0.4]]))
    stronger = (images, np.array([[0.3, 0.5, 0.6, 0.7]]))  # 0.4 reached halfway to 200
    assert compare_objectives.efficiency(stronger, weaker, chance=0.0) == pytest.approx(400 / 150)
    assert compare_objectives.efficiency(weaker, stronger, chance=0.0) is None


def test_efficiency_beyond_the_first_measurement_is_only_a_lower_bound():
    images = np.array([100, 200, 300, 400])
    weaker = (images, np.array([[0.1, 0.2, 0.25, 0.3]]))
    stronger = (images, np.array([[0.5, 0.6, 0.7, 0.8]]))
    assert compare_objectives.efficiency(stronger, weaker, chance=0.0) == ">=4"


def test_there_is_no_efficiency_to_measure_against_a_curve_at_chance():
    images = np.array([100, 200])
    at_chance = (images, np.array([[0.02, 0.03]]))
    assert compare_objectives.efficiency((images, np.array([[0.5, 0.6]])), at_chance,
                                         chance=0.04) == "weaker at chance"


def test_images_to_reach_interpolates_from_chance_at_no_images():
    images, accuracies = np.array([100, 200]), np.array([[0.5, 0.9], [0.5, 0.7]])
    assert compare_objectives.images_to_reach(images, accuracies, 0.3, 0.1) == pytest.approx(50)
    assert compare_objectives.images_to_reach(images, accuracies, 0.7, 0.1) == \
        pytest.approx(100 + 100 * 2 / 3)
    assert compare_objectives.images_to_reach(images, accuracies, 0.9, 0.1) is None


def test_the_matching_shot_count_is_interpolated_in_log_k():
    assert few_shot.matching_shots((1, 2, 4, 8), [0.2, 0.4, 0.6, 0.8], 0.5) == \
        pytest.approx(2 ** 1.5)
    assert few_shot.matching_shots((1, 2, 4), [0.6, 0.7, 0.8], 0.5) == "<=1"
    assert few_shot.matching_shots((1, 2, 4), [0.1, 0.2, 0.3], 0.5) == ">4"


def test_k_shot_draws_k_pictures_of_every_class_or_all_it_has():
    labels = np.array([0, 0, 0, 1, 1, 2])
    chosen = few_shot.k_shot_indices(labels, 2, np.random.default_rng(0), num_classes=3)
    assert sorted(np.bincount(labels[chosen])) == [1, 2, 2]


def test_mean_and_spread_is_over_seeds_with_one_degree_of_freedom():
    assert mean_and_spread([0.2, 0.4]) == {"mean": pytest.approx(0.3),
                                           "std": pytest.approx(np.sqrt(0.02)),
                                           "runs": [0.2, 0.4]}


# ------------------------------------------------------------------ data
def test_the_word_vocabulary_holds_every_word_of_the_captions():
    tokenizer = caption_words()
    captions = [SyntheticShapes(300, 8, captions="varied")[i][1] for i in range(300)]
    for caption in captions:
        assert len(tokenizer.encode(caption)) == len(caption.rstrip(".").split())


def test_the_caption_vocabulary_keeps_the_order_of_ids_and_refuses_unknown_ones():
    vocabulary = CaptionVocabulary(np.array([[4094, 320, 4095, 0], [4094, 653, 4095, 0]]))
    np.testing.assert_array_equal(vocabulary(np.array([[4094, 653, 4095, 0]])), [[3, 2, 4, 0]])
    with pytest.raises(ValueError, match="no caption"):
        vocabulary(np.array([[4094, 700, 4095]]))


# ------------------------------------------------------------------ end to end, micro scale
@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return Context(str(tmp_path_factory.mktemp("experiments")), MICRO)


def test_a_cached_model_is_loaded_with_the_weights_it_was_saved_with(context):
    objective = OBJECTIVES["siglip"]
    model, record = context.trained(objective, 0)
    again, cached = context.trained(objective, 0)
    assert not record["cached"] and cached["cached"]
    assert cached["evaluations"] == record["evaluations"] and len(record["evaluations"]) == 4
    for (name, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


def test_models_trained_ahead_in_two_processes_are_those_trained_in_one(tmp_path, context):
    ahead = Context(str(tmp_path), MICRO)
    ahead.train_ahead([("bow-prediction", None), ("supervised", 4)], jobs=2)
    assert len(os.listdir(tmp_path / "models")) == 2 * MICRO.seeds
    for seed in ahead.seeds:
        for name, batch in [("bow-prediction", None), ("supervised", 4)]:
            _, loaded = ahead.trained(OBJECTIVES[name], seed, batch)
            _, trained = context.trained(OBJECTIVES[name], seed, batch)
            assert loaded["cached"] and loaded["evaluations"] == trained["evaluations"]


@pytest.mark.parametrize("experiment", [compare_objectives, few_shot, robustness, prompts],
                         ids=["objectives", "few-shot", "robustness", "prompts"])
def test_each_experiment_writes_its_results_and_figure(context, experiment):
    path = experiment.run(context)
    results = json.loads(open(path).read())
    assert results["scale"]["seeds"] == 2 and results["wall_seconds"] > 0
    assert os.path.getsize(results["figure"]) > 10_000  # a PNG with something drawn in it
    assert os.path.dirname(results["figure"]) == os.path.dirname(path)


def test_every_accuracy_in_the_results_is_a_fraction_with_a_run_per_seed(context):
    results = json.loads(open(compare_objectives.run(context)).read())
    finals = [value for objective in results["objectives"].values()
              for value in objective["final"].values()]
    assert len(finals) == 2 * len(compare_objectives.FIGURE2)
    for value in finals:
        assert len(value["runs"]) == 2 and all(0 <= run <= 1 for run in value["runs"])


def test_the_command_line_names_the_experiments():
    assert parse_args(["few-shot"]).name == "few-shot"
    with pytest.raises(SystemExit):
        parse_args(["figure-2"])

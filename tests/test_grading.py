"""The check cells' helper (miniclip/grading/checks.py): what a student is told."""
import numpy as np
import pytest

from miniclip import Tensor
from miniclip.grading import (
    ExerciseError,
    ExerciseNotDone,
    exercise,
    numerical_gradient,
    numerical_gradients,
)


def failure(run):
    """The message of the ExerciseError that ``run(check)`` causes inside an exercise."""
    with pytest.raises(ExerciseError) as caught:
        with exercise("9z: the test") as check:
            run(check)
    return str(caught.value)


def test_a_passing_exercise_reports_how_many_checks_passed(capsys):
    with exercise("9z: the test") as check:
        check.close("output", Tensor(np.ones((2, 3))), np.ones((2, 3)) + 1e-9)
        check.equal("merges", [("a", "b")], [("a", "b")])
    assert capsys.readouterr().out == "exercise 9z: the test: passed (2 checks)\n"


def test_the_worst_element_is_named_with_its_index_and_both_values():
    expected = np.arange(12.0).reshape(3, 4)
    got = expected.copy()
    got[1, 2] += 0.5
    got[2, 3] += 2.0
    message = failure(lambda check: check.close("dL/dx", got, expected))
    assert message.startswith("exercise 9z: the test: dL/dx: 2 of 12 elements differ")
    assert "worst at index (2, 3): expected 11, got 13" in message


def test_a_shape_mismatch_is_reported_and_a_transpose_recognised():
    message = failure(lambda check: check.close("dW", np.zeros((3, 2)), np.zeros((2, 3))))
    assert "dW: expected shape (2, 3), got (3, 2) (the transpose's shape" in message
    assert "transpose" not in failure(lambda check: check.close("b", np.zeros(4), np.zeros(3)))


def test_nan_none_and_infinities():
    assert "got NaN at index (1,)" in failure(
        lambda check: check.close("loss", [1.0, np.nan], [1.0, 2.0]))
    assert "got None" in failure(lambda check: check.close("loss", None, 1.0))
    mask = np.triu(np.full((3, 3), -np.inf), 1)
    with exercise("9z: the test") as check:
        check.close("mask", mask, mask)
    assert "worst at index (0, 1): expected -inf, got 0" in failure(
        lambda check: check.close("mask", np.zeros((3, 3)), mask))


def test_sequences_and_dicts_name_the_first_difference():
    assert "differs first at position 1: expected 'b', got 'c'" in failure(
        lambda check: check.equal("symbols", ["a", "c"], ["a", "b"]))
    assert "expected 3 items, got 2" in failure(
        lambda check: check.equal("symbols", ["a", "b"], ["a", "b", "c"]))
    assert "at key ('a', 'b') expected 3, got 2" in failure(
        lambda check: check.equal("counts", {("a", "b"): 2}, {("a", "b"): 3}))
    assert "missing key 'x'" in failure(lambda check: check.equal("counts", {}, {"x": 1}))
    assert "unexpected key 'y'" in failure(lambda check: check.equal("counts", {"y": 1}, {}))
    assert "order: node b comes before its input" in failure(
        lambda check: check.true("order", False, "node b comes before its input"))


def test_a_stub_is_not_done_and_other_errors_are_reported_with_their_type():
    def stub():
        raise NotImplementedError("exercise 9z: the test")

    with pytest.raises(ExerciseNotDone, match="not done yet.*exercise 9z: the test"):
        with exercise("9z: the test") as check:
            check.close("output", stub(), 1.0)
    message = failure(lambda check: check.close("output", np.ones(2) @ np.ones(3), 1.0))
    assert message.startswith("exercise 9z: the test: your code raised ValueError")


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    np.testing.assert_allclose(numerical_gradient(lambda a: (a ** 3).sum(), x), 3 * x ** 2,
                               rtol=1e-8)


def test_numerical_gradients_of_a_product_with_an_upstream_gradient():
    x, w, gy = np.array([[1.0, 2.0]]), np.array([[3.0], [-1.0]]), np.array([[0.5]])
    gx, gw = numerical_gradients(lambda x, w: x @ w, (x, w), gy)
    np.testing.assert_allclose(gx, gy @ w.T, rtol=1e-8)
    np.testing.assert_allclose(gw, x.T @ gy, rtol=1e-8)


def test_a_tuple_for_a_list_is_named_as_a_type_not_a_length():
    message = failure(lambda check: check.equal("merged", ("ab", "c"), ["ab", "c"]))
    assert message.endswith("merged: expected a list, got a tuple (with the right contents)")


def test_a_square_transpose_is_recognised():
    expected = np.arange(9.0).reshape(3, 3)
    assert "got is the transpose of what is expected" in failure(
        lambda check: check.close("dW", expected.T, expected))


def test_a_constant_factor_is_named():
    expected = np.arange(1.0, 7.0).reshape(2, 3)
    assert "got = 0.5 × expected everywhere: a constant factor is off" in failure(
        lambda check: check.close("dL/dx", expected / 2, expected))


def test_a_wrong_number_is_reported_without_the_expected_value():
    message = failure(lambda check: check.close("loss", 2.2, 2.0))
    assert message.endswith("loss: got 2.2, off by 0.1 relative to the expected value "
                            "(allowed 1.1e-05)")          # atol + rtol, relative
    assert "1 of 1" not in message


def test_a_measured_gradient_is_told_apart_from_a_derived_one():
    expected = np.array([[0.3, -1.2], [2.0, 0.7]])
    with exercise("9z: the test") as check:
        check.gradient("dL/dx", expected * (1 + 1e-14), expected)
    assert "It must be derived" in failure(
        lambda check: check.gradient("dL/dx", expected + 3e-9, expected))


def test_a_directional_check_compares_the_slope_along_a_direction():
    gradient, direction = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    with exercise("9z: the test") as check:
        check.directional("dL/dx", [gradient], 0.0, [direction])
    assert "2 times the true one" in failure(
        lambda check: check.directional("dL/dx", [gradient * 2], 1.0, [np.array([1.0, 0])]))


def test_the_not_done_message_suits_pytest_and_notebooks_alike():
    with pytest.raises(ExerciseNotDone) as caught:
        with exercise("9z: the test"):
            raise NotImplementedError("exercise 9z: the test")
    assert "(in a notebook, run that cell again, then this one)" in str(caught.value)


def test_a_check_that_meets_a_stub_of_the_student_package_says_so_not_not_done():
    def library():
        raise NotImplementedError("assignment bpe, 5a: merge_pair: left out of the student "
                                  "edition of miniclip (write it in your submission)")
    message = failure(lambda check: check.equal("merged", library(), []))
    assert "uses miniclip's assignment bpe, 5a: merge_pair, which this student distribution " \
        "leaves out until that assignment is due" in message

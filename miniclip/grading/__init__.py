"""Checks for the course's exercises (``checks``): feedback that says which part of an
answer is wrong and how, without showing the answer; graded assignments (``assignment``,
run by ``python -m miniclip.grade``), their Gradescope packaging (``autograder``), and the
solution regions that both the notebooks' and the package's student editions cut
(``solutions``)."""
from .checks import (
                     ExerciseError,
                     ExerciseNotDone,
                     exercise,
                     numerical_gradient,
                     numerical_gradients,
)

__all__ = ["ExerciseError", "ExerciseNotDone", "exercise", "numerical_gradient",
           "numerical_gradients"]

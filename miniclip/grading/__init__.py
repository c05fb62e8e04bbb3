"""Checks for the course's exercises (``checks``): feedback that says which part of an
answer is wrong and how, without showing the answer. Graded assignments (``assignment``,
run by ``python -m miniclip.grade``): each part in a fresh, confined process (``sandbox``
here, ``worker`` there, ``wire`` between them) on a grading edition of miniclip, against
hidden tests whose gradients are exact (``exact``); their Gradescope packaging
(``autograder``); the solution regions that the notebooks', the assignments' and the
package's student editions cut (``solutions``), and the student distribution
(``distribution``)."""
from .checks import (
                     ExerciseError,
                     ExerciseNotDone,
                     exercise,
                     numerical_gradient,
                     numerical_gradients,
)

__all__ = ["ExerciseError", "ExerciseNotDone", "exercise", "numerical_gradient",
           "numerical_gradients"]

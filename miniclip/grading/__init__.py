"""Checks for the course's exercises (``checks``): feedback that says which part of an
answer is wrong and how, without showing the answer."""
from .checks import ExerciseError, ExerciseNotDone, exercise, numerical_gradient

__all__ = ["ExerciseError", "ExerciseNotDone", "exercise", "numerical_gradient"]

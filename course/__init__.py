"""Course plumbing shared by every chapter: where the model lives, tiny random models for tests
and notebooks, the learner's functions (course.learner) and the exercise grader (course.grading,
a pytest plugin). Nothing here is inference-engine code."""

from course.learner import notebook_setup, rounds, solution_for, under_make_test
from course.paths import REPO_ROOT, default_model_path

__all__ = ["REPO_ROOT", "default_model_path", "notebook_setup", "rounds", "solution_for", "under_make_test"]

"""Course plumbing shared by every chapter: where the model lives, tiny random models for tests
and notebooks, and the exercise grader. Nothing here is inference-engine code."""

from course.paths import REPO_ROOT, default_model_path

__all__ = ["REPO_ROOT", "default_model_path"]

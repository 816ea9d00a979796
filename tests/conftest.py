"""The repo-wide tests run quizzes and graders as a learner would; they must not write into the
learner's own progress file (.course-progress.json), and their child processes inherit this."""

import os

os.environ["NANOVLLM_PROGRESS"] = "off"

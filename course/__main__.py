"""`python -m course progress`: which exercises pass and which quizzes are passed, per chapter."""

import argparse
import sys

from course import progress


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("progress", help="exercises passing and quizzes passed, per chapter")
    show.add_argument("--run", action="store_true", help="run every chapter's graders first (minutes on a CPU)")
    args = parser.parse_args(argv)
    if args.run:
        progress.run_graders()
    print(progress.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())

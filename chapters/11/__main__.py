"""python -m ch11: the chapter staircase on this CPU (python -m ch11.staircase --help)."""

from ch11.staircase import main

main()

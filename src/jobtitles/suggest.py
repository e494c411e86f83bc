"""`python -m jobtitles.suggest`: the titles of a pool most worth labelling next (jobtitles.active)."""

import sys

from jobtitles.cli import suggest_main

if __name__ == "__main__":
    sys.exit(suggest_main())

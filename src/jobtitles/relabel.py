"""`python -m jobtitles.relabel`: the command lives in `jobtitles.reporting.relabel`."""

import sys

from jobtitles.reporting.relabel import main

if __name__ == "__main__":
    sys.exit(main())

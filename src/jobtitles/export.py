"""`python -m jobtitles.export`: the command lives in `jobtitles.predict.export`."""

import sys

from jobtitles.predict.export import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m jobtitles.spark_predict`: the command lives in `jobtitles.predict.spark_predict`."""

import sys

from jobtitles.predict.spark_predict import main

if __name__ == "__main__":
    sys.exit(main())

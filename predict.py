"""Label job titles with a trained model folder.

    python predict.py --model outputs/base/model "VP of Sales" "Senior Software Engineer"
    python predict.py --model outputs/base/model --input titles.csv --output predictions.jsonl
"""

import sys

from jobtitles.cli import predict_main
from jobtitles.core.log import quiet_libraries

if __name__ == "__main__":
    quiet_libraries()
    sys.exit(predict_main())

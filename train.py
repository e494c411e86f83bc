"""Cross-validate, train and save a multi-label job-title classifier.

    accelerate launch train.py --config configs/base.yaml [--any_config_key value ...]
"""

import sys

from jobtitles.cli import train_main
from jobtitles.core.log import quiet_libraries

if __name__ == "__main__":
    quiet_libraries()
    sys.exit(train_main())

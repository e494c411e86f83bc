"""Serve a trained model folder over HTTP: a page at /, the API (/predict, /info, /health, the Hugging Face
text-classification route at POST /) and its docs at /docs.

    python serve.py --model outputs/base/model               # http://127.0.0.1:8000
"""

import sys

from jobtitles.core.log import quiet_libraries
from jobtitles.serve.cli import serve_main

if __name__ == "__main__":
    quiet_libraries()
    sys.exit(serve_main())

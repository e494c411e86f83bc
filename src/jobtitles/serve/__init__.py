"""HTTP API and web page for a trained model folder: `python serve.py --model outputs/base/model`.

create_app(ServeSettings(model_dir, ...)) builds the FastAPI app; the model is loaded in its lifespan handler.
"""

from jobtitles.serve.app import create_app
from jobtitles.serve.settings import ServeSettings

__all__ = ["create_app", "ServeSettings"]

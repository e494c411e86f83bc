"""Multi-label job-title classification with Hugging Face transformers."""

from jobtitles.core.errors import UserError

__all__ = ["UserError", "TitleClassifier", "Prediction"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import jobtitles` (and the CLIs' error paths) stay fast and torch-free.
    if name in ("TitleClassifier", "Prediction"):
        from jobtitles.predict import inference

        return getattr(inference, name)
    raise AttributeError(name)

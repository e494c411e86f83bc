"""Multi-label job-title classification with Hugging Face transformers."""

from jobtitles.core.errors import UserError

__all__ = ["UserError", "TitleClassifier"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import jobtitles` (and the CLIs' error paths) stay fast and torch-free.
    if name == "TitleClassifier":
        from jobtitles.predict.inference import TitleClassifier

        return TitleClassifier
    raise AttributeError(name)

"""`from jobtitles.spark import title_labeler`: the Spark column function, which lives in `jobtitles.predict.spark`."""

from jobtitles.predict.spark import title_labeler

__all__ = ["title_labeler"]

"""Active learning: which titles of an unlabelled pool to label next (`jobtitles suggest`)."""

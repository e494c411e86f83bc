"""What a run leaves for people: report.md, plots, the model card, the run's files, the label-issue list and
the relabel command that applies it."""

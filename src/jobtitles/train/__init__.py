"""The training side: settings, the job (folds, one Trainer run per model, the final model), the run folder, the
model folder's writer and the Hub push."""

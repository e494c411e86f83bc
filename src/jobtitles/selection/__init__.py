"""From the folds' scores to the run's figures: out-of-fold assembly, the cross-fitted choice of decision rule
and score sources, the candidate names, and the `RunResult` they produce."""

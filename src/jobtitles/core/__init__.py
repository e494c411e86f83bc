"""What both sides share: the model folder's format and its checks, the decision rule and scoring, the
baseline's safe store, titles, labels, the CSV reader, tokenization, metrics, and the small utilities (errors,
logging, atomic files, cores, spreadsheet-safe cells, the embedded encoder)."""

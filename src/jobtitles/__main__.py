"""`jobtitles <command> ...` (the installed command) and `python -m jobtitles <command> ...`: one entry for every
command of the project; each takes the same flags as its script (`jobtitles train` = `python train.py`)."""

from __future__ import annotations

import difflib
import importlib
import sys

from jobtitles import __version__
from jobtitles.core.errors import EXIT_USER_ERROR
from jobtitles.core.log import quiet_libraries

# name -> (module:function, what it does); imported only when chosen, so `jobtitles --help` stays instant
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("jobtitles.cli:train_main", "cross-validate, train and save a model (as train.py)"),
    "predict": ("jobtitles.cli:predict_main", "label titles with a model folder (as predict.py)"),
    "serve": ("jobtitles.serve.cli:serve_main", "HTTP API and page for a model folder (as serve.py)"),
    "export": ("jobtitles.predict.export:main", "ONNX export and int8 with its parity check"),
    "relabel": ("jobtitles.reporting.relabel:main", "a corrected CSV from a run's label issues"),
    "suggest": ("jobtitles.cli:suggest_main", "the titles of a pool most worth labelling next"),
    "spark-predict": ("jobtitles.predict.spark_predict:main", "label a CSV, Parquet data set or table on Spark"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return ("usage: jobtitles <command> [--help] [flags ...]\n\nMulti-label job-title classification.\n\n"
            "commands:\n" + "\n".join(lines) + "\n\n`jobtitles <command> --help` lists a command's flags; "
            "`jobtitles train` without --config uses the packaged base config.")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_USER_ERROR
    if argv[0] == "--version":
        print(f"jobtitles {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        print(f"error: unknown command {name!r}{hint} (expected one of: {', '.join(COMMANDS)})", file=sys.stderr)
        return EXIT_USER_ERROR
    quiet_libraries()
    sys.argv[0] = f"jobtitles {name}"  # what each command's --help and run_info.json show as the program
    module, function = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module), function)(rest)


if __name__ == "__main__":
    sys.exit(main())

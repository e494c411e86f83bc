"""Hostile and broken inputs to `python -m jobtitles.relabel`: every one ends in one line
`error: <file>: expected <what>, found <what>; <fix>` and exit code 2, before anything is written; no input is
ever overwritten. In-process (main(argv)) except one subprocess run that shows no traceback reaches a user."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from jobtitles.reporting.relabel import main as relabel_main

TRAIN = b"Title;Column 1;Column 2\nHead of Sales;Director;Sales\nVP Sales;Vice President;Sales\nFounder;Lead;\n"
ISSUES_HEADER = "row;title;given;suggested;quality;missing;extra;flagged;kind;conflict_rows\n"
ISSUES = (ISSUES_HEADER
          + "3;VP Sales;Vice President | Sales;Director | Sales;0.1000;Director;Vice President;1;swap;\n"
          + "2;Head of Sales;Director | Sales;Director | Sales;0.9000;;;0;;\n"
          + "4;Founder;Lead;Lead;0.8000;;;0;;\n")
LABELS = ["Director", "Lead", "Sales", "Vice President"]
DAMAGED = "the run folder is damaged: restore run_info.json from a copy or rerun train.py"
ISSUES_FIX = ("restore the label_issues.csv train.py wrote (re-saving it in a spreadsheet changes its delimiter or "
              "columns) or rerun train.py; list accepted rows in the --accept file")
ISSUES_EXPECTED = ("the label_issues.csv train.py writes "
                   "(columns row;title;given;suggested;quality;missing;extra;flagged;kind;conflict_rows)")
ACCEPT_EXPECTED = "a text file with one label_issues.csv row number per line"


def run_info(train: Path, raw: bytes = TRAIN) -> dict:
    project = {"delimiter": ";", "encoding": "utf-8", "text_column": "Title", "label_column_prefix": "Column",
               "empty_label": None, "train_file": str(train)}
    return {"train_file": str(train), "fingerprint": {"csv_sha256": hashlib.sha256(raw).hexdigest()},
            "config": {"project": project}}


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    """A run folder as train.py leaves it (run_info.json, label_issues.csv, model/config.json), its training CSV
    and an accept file for row 3, whose suggestion swaps Vice President for Director."""
    run, train = tmp_path / "run", tmp_path / "data" / "titles.csv"
    (run / "model").mkdir(parents=True)
    train.parent.mkdir()
    train.write_bytes(TRAIN)
    (run / "run_info.json").write_text(json.dumps(run_info(train)), encoding="utf-8")
    (run / "label_issues.csv").write_text(ISSUES, encoding="utf-8")
    (run / "model" / "config.json").write_text(json.dumps({"id2label": dict(enumerate(LABELS))}), encoding="utf-8")
    accept = tmp_path / "rows.txt"
    accept.write_text("3\n", encoding="utf-8")
    return {"run": run, "train": train, "info": run / "run_info.json", "issues": run / "label_issues.csv",
            "accept": accept, "out": run / "corrected.csv", "tmp": tmp_path}


def argv(p: dict[str, Path], *extra: str) -> list[str]:
    return ["--run", str(p["run"]), "--accept", str(p["accept"]), *extra]


def snapshot(p: dict[str, Path]) -> dict[str, bytes | None]:
    return {k: p[k].read_bytes() if p[k].is_file() else None for k in ("train", "info", "issues", "accept")}


def test_the_fixture_relabels(paths, capsys):
    """The untouched fixture works, and a row accepted twice counts once: the hostile cases below differ from it
    by one thing."""
    paths["accept"].write_text("3\n3  # twice\n", encoding="utf-8")
    assert relabel_main(argv(paths)) == 0
    assert paths["out"].read_bytes() == TRAIN.replace(b"VP Sales;Vice President;Sales", b"VP Sales;Director;Sales")
    assert "1 rows relabelled (3)" in capsys.readouterr().out


def _info(p, edit: Callable[[dict], object]) -> None:
    info = run_info(p["train"])
    edit(info)
    p["info"].write_text(json.dumps(info), encoding="utf-8")


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)  # a huge file without writing it


def _issues(p, *lines: str, header: str = ISSUES_HEADER) -> None:
    p["issues"].write_text(header + "".join(lines), encoding="utf-8")


ROW3 = "3;VP Sales;Vice President | Sales;Director | Sales;0.1;;;1;;\n"

# case: (set-up: paths -> extra argv, expected message after "error: " with {run} {info} {issues} {train} {accept}
# {tmp} for the paths)
CASES: dict[str, tuple[Callable[[dict], list[str] | None], str]] = {
    # --- the run folder -----------------------------------------------------------------------------------------
    "run_missing": (lambda p: ["--run", str(p["tmp"] / "nope")],
                    "{tmp}/nope: expected a run folder written by train.py, found nothing; pass the folder train.py "
                    "wrote (--run outputs/<run>), not a file in it"),
    "run_is_a_file": (lambda p: ["--run", str(p["train"])],
                      "{train}: expected a run folder written by train.py, found a file; pass the folder train.py "
                      "wrote (--run outputs/<run>), not a file in it"),
    # --- run_info.json ------------------------------------------------------------------------------------------
    "info_missing": (lambda p: p["info"].unlink(),
                     "{info}: expected the run_info.json train.py writes in every run folder, found no "
                     "run_info.json; is {run} a run folder? pass the folder train.py wrote (--run outputs/<run>)"),
    "info_is_a_folder": (lambda p: _replace_with_folder(p["info"]),
                         "{info}: expected the run_info.json train.py writes in every run folder, found a folder; "
                         "pass a regular file"),
    "info_empty": (lambda p: p["info"].write_bytes(b""), "{info}: expected JSON, found an empty file; " + DAMAGED),
    "info_not_utf8": (lambda p: p["info"].write_bytes(b'{"train_file": "caf\xe9"}'),
                      "{info}: expected UTF-8 text, found byte 0xe9 on line 1; " + DAMAGED),
    "info_not_json": (lambda p: p["info"].write_text("{nope", encoding="utf-8"),
                      "{info}: expected JSON, found invalid JSON (Expecting property name enclosed in double quotes: "
                      "line 1 column 2 (char 1)); " + DAMAGED),
    "info_is_a_list": (lambda p: p["info"].write_text("[1, 2]", encoding="utf-8"),
                       "{info}: expected a JSON object, found a list; " + DAMAGED),
    "info_nested_deeply": (lambda p: p["info"].write_text("[" * 100_000, encoding="utf-8"),
                           "{info}: expected JSON, found JSON nested too deeply to read; " + DAMAGED),
    "info_huge": (lambda p: _sparse(p["info"], 17 << 20),
                  "{info}: expected the run_info.json train.py writes in every run folder, at most 16 MB, found "
                  "17 MB; " + DAMAGED),
    "info_no_fingerprint": (lambda p: _info(p, lambda i: i.pop("fingerprint")),
                            "{info}: expected a key 'fingerprint.csv_sha256' holding a SHA-256 of 64 hex digits, "
                            "found no 'fingerprint'; " + DAMAGED),
    "info_project_is_a_list": (lambda p: _info(p, lambda i: i["config"].update(project=[])),
                               "{info}: expected 'config.project' to be an object, found a list; " + DAMAGED),
    "info_train_file_a_number": (lambda p: _info(p, lambda i: i.update(train_file=5)),
                                 "{info}: expected 'train_file' to be a path string, found 5; " + DAMAGED),
    "info_sha_short": (lambda p: _info(p, lambda i: i["fingerprint"].update(csv_sha256="abc")),
                       "{info}: expected 'fingerprint.csv_sha256' to be a SHA-256 of 64 hex digits, found \"abc\"; "
                       + DAMAGED),
    "info_delimiter_two_chars": (lambda p: _info(p, lambda i: i["config"]["project"].update(delimiter=";;")),
                                 "{info}: expected 'config.project.delimiter' to be one character other than a quote "
                                 "or line break, found \";;\"; " + DAMAGED),
    "info_encoding_not_text": (lambda p: _info(p, lambda i: i["config"]["project"].update(encoding="rot13")),
                               "{info}: expected 'config.project.encoding' to be a text encoding name such as "
                               "\"utf-8\", found \"rot13\"; " + DAMAGED),
    "info_empty_label_a_list": (lambda p: _info(p, lambda i: i["config"]["project"].update(empty_label=["x"])),
                                "{info}: expected 'config.project.empty_label' to be a label name or null, found a "
                                "list; " + DAMAGED),
    # --- label_issues.csv ---------------------------------------------------------------------------------------
    "issues_missing": (lambda p: p["issues"].unlink(),
                       "{issues}: expected " + ISSUES_EXPECTED + ", found no label_issues.csv; the run had "
                       "`label_issues: false` or predates it: rerun train.py with label_issues on"),
    "issues_is_a_folder": (lambda p: _replace_with_folder(p["issues"]),
                           "{issues}: expected " + ISSUES_EXPECTED + ", found a folder; pass a regular file"),
    "issues_empty": (lambda p: p["issues"].write_bytes(b""),
                     "{issues}: expected " + ISSUES_EXPECTED + ", found an empty file; " + ISSUES_FIX),
    "issues_comma_resaved": (lambda p: p["issues"].write_text(ISSUES.replace(";", ","), encoding="utf-8"),
                             "{issues}: expected " + ISSUES_EXPECTED + ", found the columns '"
                             + ISSUES_HEADER.replace(";", ",")[:60] + "'... (74 characters); " + ISSUES_FIX),
    "issues_other_columns": (lambda p: _issues(p, "3;VP Sales;x\n", header="row;title;labels\n"),
                             "{issues}: expected " + ISSUES_EXPECTED + ", found the columns 'row;title;labels'; "
                             + ISSUES_FIX),
    "issues_not_utf8": (lambda p: p["issues"].write_bytes(ISSUES.encode() + "4;Café;;;;;;;;\n".encode("cp1252")),
                        "{issues}: expected UTF-8 text, found byte 0xe9 on line 5; " + ISSUES_FIX),
    "issues_row_not_a_number": (lambda p: _issues(p, ROW3, "3a;VP Sales;;;;;;;;\n"),
                                "{issues}: expected a row number in column 'row', found '3a' on line 3; "
                                + ISSUES_FIX),
    "issues_row_twice": (lambda p: _issues(p, "2;Head of Sales;;;;;;;;\n", ROW3, ROW3),
                         "{issues}: expected each row once, found row 3 on lines 3 and 4; " + ISSUES_FIX),
    "issues_field_too_large": (lambda p: _issues(p, ROW3, "4;" + "x" * 200_000 + ";;;;;;;;\n"),
                               "{issues}: expected " + ISSUES_EXPECTED + ", found malformed CSV on line 3 (field "
                               "larger than field limit (131072)); " + ISSUES_FIX),
    "issues_line_too_long": (lambda p: _issues(p, ROW3, "4;" + "x" * (1 << 20) + "\n"),
                             "{issues}: expected " + ISSUES_EXPECTED + ", lines of at most 1 MB, found line 3 "
                             "longer than 1 MB; " + ISSUES_FIX),
    "issues_label_not_in_model": (lambda p: _issues(p, "3;VP Sales;;CEO | Sales;;;;;;\n"),
                                  "{issues}: row 3: expected suggested labels of the run's model, found 'CEO'; "
                                  + ISSUES_FIX),
    "issues_label_control_char": (lambda p: _issues(p, "3;VP Sales;;Dir\x07ector;;;;;;\n"),
                                  "{issues}: row 3: expected suggested labels without '|' or control characters, "
                                  "found 'Dir\\x07ector'; " + ISSUES_FIX),
    "issues_row_beyond_train": (lambda p: (_issues(p, "9;Ghost;;Director;;;;;;\n"),
                                           p["accept"].write_text("9\n"))[0],
                                "{train}: expected a record starting on row 9 (label_issues.csv lists it), found "
                                "none (the file has 4 rows); was the run made on another file?"),
    "issues_title_differs": (lambda p: _issues(p, "3;" + "CEO " * 40 + ";;Director;;;;;;\n"),
                             "{train}: row 3 holds 'VP Sales' but {issues} has '" + ("CEO " * 15)
                             + "'... (160 characters) for it; was the run made on another file?"),
    # --- the training CSV ---------------------------------------------------------------------------------------
    "train_missing": (lambda p: p["train"].unlink(),
                      "{train}: expected the training CSV of {run}, found no titles.csv; paths in run_info.json are "
                      "relative to the folder train.py ran in: run from there or pass --train_file <path>"),
    "train_file_a_folder": (lambda p: ["--train_file", str(p["tmp"] / "data")],
                            "{tmp}/data: expected the training CSV of {run}, found a folder; pass a regular file"),
    "train_field_too_large": (lambda p: _retrain(p, TRAIN + b"x" * 200_000 + b";Lead;\n"),
                              "{train}: expected CSV with delimiter ';', found malformed CSV (field larger than field "
                              "limit (131072)); " + DAMAGED),
    # --- the accept file ----------------------------------------------------------------------------------------
    "accept_missing": (lambda p: p["accept"].unlink(),
                       "{accept}: expected " + ACCEPT_EXPECTED + ", found no rows.txt; check the --accept path"),
    "accept_is_a_folder": (lambda p: _replace_with_folder(p["accept"]),
                           "{accept}: expected " + ACCEPT_EXPECTED + ", found a folder; pass a regular file"),
    "accept_is_a_pipe": (lambda p: (p["accept"].unlink(), os.mkfifo(p["accept"]))[0],  # reading it would block
                         "{accept}: expected " + ACCEPT_EXPECTED + ", found a device, pipe or socket; pass a "
                         "regular file"),
    "accept_empty": (lambda p: p["accept"].write_bytes(b""),
                     "{accept}: expected " + ACCEPT_EXPECTED + ", found no row numbers; list the label_issues.csv "
                     "rows whose suggestion you accept, one per line"),
    "accept_not_utf8": (lambda p: p["accept"].write_bytes(b"3\n# caf\xe9\n"),
                        "{accept}: expected UTF-8 text, found byte 0xe9 on line 2; re-save it as UTF-8"),
    "accept_utf16": (lambda p: p["accept"].write_text("3\r\n", encoding="utf-16"),
                     "{accept}: expected UTF-8 text, found UTF-16 (it starts with a UTF-16 byte-order mark); re-save "
                     "it as UTF-8 (PowerShell: Set-Content -Encoding utf8)"),
    "accept_superscript_digit": (lambda p: p["accept"].write_text("3\n²\n", encoding="utf-8"),
                                 "{accept}: line 2: expected one row number (as in label_issues.csv), found '²'; "
                                 "write one row number per line ('#' starts a comment)"),
    "accept_huge_number": (lambda p: p["accept"].write_text("9" * 5000 + "\n", encoding="utf-8"),
                           "{accept}: line 1: expected one row number (as in label_issues.csv), found '"
                           + "9" * 60 + "'... (5,000 characters); write one row number per line ('#' starts a "
                           "comment)"),
    "accept_huge_file": (lambda p: _sparse(p["accept"], 65 << 20),
                         "{accept}: expected " + ACCEPT_EXPECTED + ", at most 64 MB, found 65 MB; write one row "
                         "number per line ('#' starts a comment)"),
    "accept_row_not_in_issues": (lambda p: p["accept"].write_text("3\n42\n", encoding="utf-8"),
                                 "{accept}: row 42 is not in {issues}; use the `row` column of label_issues.csv"),
    "accept_is_label_issues": (lambda p: ["--accept", str(p["issues"])],
                               "{issues}: line 1: expected one row number (as in label_issues.csv), found '"
                               + ISSUES_HEADER[:60] + "'... (74 characters); write one row number per line ('#' "
                               "starts a comment)"),
    # --- the output ---------------------------------------------------------------------------------------------
    "output_is_label_issues": (lambda p: ["--output", str(p["issues"])],
                               "--output {issues} is the run's label_issues.csv; the original is never overwritten: "
                               "choose another path"),
    "output_is_run_info": (lambda p: ["--output", str(p["info"])],
                           "--output {info} is the run's run_info.json; the original is never overwritten: choose "
                           "another path"),
    "output_links_to_train": (lambda p: (p["out"].symlink_to(p["train"]), ["--output", str(p["out"])])[1],
                              "--output {run}/corrected.csv is the training file; the original is never "
                              "overwritten: choose another path"),
    "output_symlink_loop": (lambda p: (p["out"].symlink_to(p["out"]), ["--output", str(p["out"])])[1],
                            "--output {run}/corrected.csv: expected a file path, found a symlink loop (Symlink loop "
                            "from '{run}/corrected.csv'); choose another path"),
    "output_is_a_folder": (lambda p: ["--output", str(p["tmp"])],
                           "--output {tmp}: expected a CSV file name, found a folder; give a file name, e.g. "
                           "--output corrected.csv"),
    # os.replace would swap a device for a file: as root, `--output /dev/null` replaced the machine's /dev/null.
    # The test uses a pipe of its own, so that a broken check cannot do that again.
    "output_is_a_pipe": (lambda p: (os.mkfifo(p["tmp"] / "fifo"), ["--output", str(p["tmp"] / "fifo")])[1],
                         "--output {tmp}/fifo: expected a CSV file name, found a device, pipe or socket; give a file "
                         "name, e.g. --output corrected.csv"),
    "output_under_a_file": (lambda p: ["--output", str(p["accept"] / "x.csv")],
                            "--output {accept}/x.csv: expected {accept} to be a folder, found a file; choose another "
                            "path"),
}


def _retrain(p, raw: bytes) -> None:
    """A training file the run really was made on (run_info.json records its hash)."""
    p["train"].write_bytes(raw)
    p["info"].write_text(json.dumps(run_info(p["train"], raw)), encoding="utf-8")


@pytest.mark.parametrize("case", list(CASES))
def test_relabel_hostile_input_is_one_line(paths, capsys, case):
    setup, expected = CASES[case]
    extra = setup(paths)
    extra = extra if isinstance(extra, list) else []  # (a set-up's write_text returns a count)
    args = argv(paths)
    for flag, value in zip(extra[::2], extra[1::2]):  # an override replaces the fixture's value
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    before = snapshot(paths)
    code = relabel_main(args)
    err = capsys.readouterr().err
    message = "error: " + expected.format(**{k: str(v) for k, v in paths.items()})
    assert (code, err) == (2, message + "\n")
    assert "Traceback" not in err
    assert snapshot(paths) == before  # nothing read was changed
    assert not paths["out"].exists() or paths["out"].is_symlink()  # nothing written
    assert not [q for q in paths["run"].iterdir() if q.name.endswith(".tmp")]


def test_relabel_process_prints_one_line(paths):
    """The real command in its own process: one line on stderr, exit 2, nothing on stdout."""
    paths["accept"].write_bytes(b"\xff\xfe3\x00")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "jobtitles.reporting.relabel", *argv(paths)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (f"error: {paths['accept']}: expected UTF-8 text, found UTF-16 (it starts with a UTF-16 "
                           "byte-order mark); re-save it as UTF-8 (PowerShell: Set-Content -Encoding utf8)\n")

"""Label issues (cleanlab ranking + certain conflicts) and the relabel command. No training except the shared
tiny_run_dir fixture: out-of-fold scores are built the way a trained model would give them."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import decide
from jobtitles.reporting import label_issues as li
from jobtitles.core.data import load_labeled_csv
from jobtitles.core.errors import UserError
from jobtitles.reporting.relabel import main as relabel_main
from jobtitles.reporting.relabel import relabel

LABELS = ["Director", "Manager", "Owner", "Vice President"]  # Owner co-occurs with the levels


def planted_set(n: int = 240, seed: int = 0):
    """A separable set: truth = one level (+ Owner on every 5th row); out-of-fold scores near the TRUE labels
    (logits +-4 with noise, as a model that learnt the pattern despite a few wrong labels gives them). Then
    known rows get wrong labels: 3 level swaps, one Owner dropped, one Owner added."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, len(LABELS)), dtype=np.float32)
    truth[np.arange(n), rng.choice([0, 1, 3], size=n)] = 1
    truth[::5, 2] = 1
    scores = 1 / (1 + np.exp(-(np.where(truth > 0, 4.0, -4.0) + rng.normal(0, 1.0, truth.shape))))
    given = truth.copy()
    planted = {}
    for i in (7, 33, 61):  # swap the level for another level
        old = int(np.flatnonzero(truth[i, [0, 1, 3]])[0])
        given[i, [0, 1, 3][old]] = 0
        given[i, [0, 1, 3][(old + 1) % 3]] = 1
        planted[i] = li.SWAP
    given[100, 2] = 0  # row 100 is an Owner (100 % 5 == 0): forgotten
    planted[100] = li.MISSING
    given[141, 2] = 1  # row 141 is not: Owner added
    planted[141] = li.EXTRA
    titles = [f"title {i}" for i in range(n)]
    rows = [i + 2 for i in range(n)]
    return titles, rows, given, scores, planted


def test_planted_label_errors_come_first():
    titles, rows, given, scores, planted = planted_set()
    issues = li.find_label_issues(titles, rows, given, LABELS, scores, decide(scores, 0.5, True))
    assert issues.ranked and issues.note is None
    planted_rows = {i + 2 for i in planted}
    assert set(worst(issues, len(planted))) == planted_rows
    flagged = {r.row for r in issues.rows if r.flagged}
    assert flagged <= planted_rows and len(flagged) >= 3  # cleanlab's confident-learning cut, not only a rank
    by_row = {r.row: r for r in issues.rows}
    for i, kind in planted.items():
        assert by_row[i + 2].kind == (kind if i + 2 in flagged else "")
        assert bool(by_row[i + 2].missing) == (kind != li.EXTRA) and bool(by_row[i + 2].extra) == (kind != li.MISSING)
    assert by_row[102].missing == ["Owner"] and by_row[102].extra == []
    assert by_row[143].extra == ["Owner"] and by_row[143].given[-1] == "Owner"
    qualities = sorted(r.quality for r in issues.rows)
    assert qualities[len(planted) - 1] < 0.5 < qualities[len(planted)]  # a clear gap after the planted rows
    assert issues.rows[-1].kind == "" and not issues.rows[-1].flagged


CONFLICT_TITLES = [("Dir. Sales", ["Director"]), ("dir  sales", ["Manager"]), ("Dir Sales", ["Director"]),
                   ("VP Sales", ["Vice President"]), ("V.P. Sales", ["Vice President"]),
                   ("C++ Developer", ["Manager"]), ("C Developer", ["Director"]), ("Owner", ["Owner"])]


def conflict_inputs():
    titles = [t for t, _ in CONFLICT_TITLES]
    y = np.array([[lab in labs for lab in LABELS] for _, labs in CONFLICT_TITLES], dtype=np.float32)
    scores = np.clip(y * 0.8 + 0.1, 0, 1)
    return titles, [10 + i for i in range(len(titles))], y, scores


def test_conflicts_listed_without_cleanlab(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # `import cleanlab` now raises ImportError
    titles, rows, y, scores = conflict_inputs()
    issues = li.find_label_issues(titles, rows, y, LABELS, scores, decide(scores, 0.5, True))
    assert not issues.ranked
    assert 'pip install "jobtitles[label-issues]"' in issues.note
    conflicts = {r.row: r.conflict_rows for r in issues.rows if r.kind == li.CONFLICT}
    assert conflicts == {10: [11], 11: [10, 12], 12: [11]}  # V.P./VP agree; C++ is not C
    assert [r.row for r in issues.rows[:3]] == [10, 11, 12] and all(r.quality is None for r in issues.rows)
    line = li.console_line(issues.summary("label_issues.csv"))
    assert "\n" not in line and 'pip install "jobtitles[label-issues]"' in line and "3 rows" in line
    path = li.write_label_issues(tmp_path, issues)
    got = li.read_label_issues(path)
    assert [g["kind"] for g in got[:3]] == ["conflict"] * 3 and got[0]["quality"] == "" and got[1]["conflict_rows"] == "10 12"


def test_conflicts_listed_with_cleanlab_too():
    titles, rows, y, scores = conflict_inputs()
    issues = li.find_label_issues(titles, rows, y, LABELS, scores, decide(scores, 0.5, True))
    assert issues.ranked
    assert {r.row for r in issues.rows if r.kind == li.CONFLICT} == {10, 11, 12}


def test_ranking_off_by_option_and_failure_never_raises(monkeypatch):
    titles, rows, given, scores, _ = planted_set()
    suggested = decide(scores, 0.5, True)
    off = li.find_label_issues(titles, rows, given, LABELS, scores, suggested, use_cleanlab=False)
    assert not off.ranked and off.n_model_flagged == 0 and "label_issues: false" in off.note

    def broken(*_):
        raise ValueError("boom")

    monkeypatch.setattr(li, "_cleanlab_ranking", broken)
    titles[1] = "TITLE 0"  # a conflict with row 2 ("title 0") whatever the ranking does
    failed = li.find_label_issues(titles, rows, given, LABELS, scores, suggested)
    assert not failed.ranked and "cleanlab failed (ValueError: boom)" in failed.note
    assert {r.row for r in failed.rows if r.kind == li.CONFLICT} == {2, 3}  # row 2 has Owner, row 3 not


def worst(issues: li.LabelIssues, n: int) -> list[int]:
    return [r.row for r in sorted(issues.rows, key=lambda r: r.quality)[:n]]


def test_rows_without_label_are_ranked():
    titles, rows, given, scores, _ = planted_set()
    given[[20, 21], :] = 0  # rows with no label at all (empty_label: null), though the model sees a level
    issues = li.find_label_issues(titles, rows, given, LABELS, scores, decide(scores, 0.5, True))
    by_row = {r.row: r for r in issues.rows}
    assert issues.ranked and by_row[22].given == [] and by_row[22].kind == li.MISSING
    assert {22, 23} <= set(worst(issues, 7))  # among the 5 planted errors


def test_labels_on_one_row_or_every_row_do_not_crash():
    titles, rows, given, scores, _ = planted_set()
    given = np.c_[given, np.zeros(len(given)), np.ones(len(given))].astype(np.float32)
    given[5, 4] = 1  # "Rare": one positive row; "Everywhere": no negative row
    scores = np.c_[scores, np.full(len(scores), 0.02), np.full(len(scores), 0.97)]
    labels = LABELS + ["Rare", "Everywhere"]
    issues = li.find_label_issues(titles, rows, given, labels, scores, decide(scores, 0.5, True))
    assert issues.ranked and len(issues.rows) == len(titles) and all(r.quality is not None for r in issues.rows)
    assert issues.note == "labels on every row (or none) left out of the ranking: Everywhere"
    assert 7 in worst(issues, 6)  # the one "Rare" row, which the model does not see as Rare


def test_csv_and_report_section(tmp_path):
    titles, rows, given, scores, planted = planted_set()
    titles[7] = 'Sales | "Key" Accounts; EMEA'
    issues = li.find_label_issues(titles, rows, given, LABELS, scores, decide(scores, 0.5, True))
    path = li.write_label_issues(tmp_path, issues)
    assert path == tmp_path / "label_issues.csv" and sorted(p.name for p in tmp_path.iterdir()) == ["label_issues.csv"]
    text = path.read_bytes().decode("utf-8")
    assert text.splitlines()[0] == ";".join(li.COLUMNS)
    got = li.read_label_issues(path)
    assert len(got) == len(titles) and [int(g["row"]) for g in got] == [r.row for r in issues.rows]
    assert [g["flagged"] for g in got].count("1") == issues.n_flagged >= 3
    swapped = next(g for g in got if g["row"] == "9")
    assert swapped["title"] == titles[7] and swapped["kind"] == "swap"
    owner = next(g for g in got if g["row"] == "2")  # row 0: an Owner, given right
    assert owner["given"] == owner["suggested"] and " | " in owner["given"] and owner["flagged"] == "0"
    section = li.report_section(issues, top=5)
    assert f"{issues.n_flagged} of {len(titles)} rows flagged" in section
    table = [line for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == issues.n_flagged and all(line.count(" | ") == 6 for line in table)  # the title's pipe is escaped
    assert 'Sales \\| "Key" Accounts; EMEA' in section


# ---- relabel ---------------------------------------------------------------------------------------------

PROJECT = {"delimiter": ";", "encoding": "utf-8", "text_column": "Title", "label_column_prefix": "Column",
           "empty_label": "Not Required"}
RAW = ("\ufeffTitle;Column 1;Column 2;Notes\r\n"
       "Head of Sales;Director;Sales;keep\r\n"
       '"Sales; Key Accounts";Senior;Sales;\r\n'
       "\r\n"
       "Marketing Lead;Lead;Marketing;x\r\n"
       "Board Member;;;\r\n"
       "Founder;Lead;;\r\n"
       "IT Lead;Lead;Information Technology;last").encode("utf-8")
# (title, given, suggested) in row order from row 2
ROWS = [("Head of Sales", ["Director", "Sales"], ["Director", "Sales"]),
        ("Sales; Key Accounts", ["Senior", "Sales"], ["Lead", "Sales"]),
        None,  # row 4: a blank line
        ("Marketing Lead", ["Lead", "Marketing"], ["Lead", "Marketing"]),
        ("Board Member", ["Not Required"], ["Director"]),
        ("Founder", ["Lead"], ["Not Required"]),
        ("IT Lead", ["Lead", "Information Technology"], ["Senior", "Information Technology"])]


def fake_run(tmp_path: Path, raw: bytes = RAW, rows=ROWS, project=PROJECT) -> tuple[Path, Path]:
    """A run folder as train.py leaves it (run_info.json) plus label_issues.csv from write_label_issues."""
    train = tmp_path / "data" / "titles.csv"
    train.parent.mkdir(parents=True)
    train.write_bytes(raw)
    run = tmp_path / "run"
    run.mkdir()
    info = {"train_file": str(train), "fingerprint": {"csv_sha256": hashlib.sha256(raw).hexdigest(), "settings": {}},
            "config": {"project": dict(project, train_file=str(train))}}
    (run / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    numbers = [k + 2 for k, r in enumerate(rows) if r is not None]
    rows = [r for r in rows if r is not None]
    labels = sorted({lab for _, g, s in rows for lab in g + s})
    y = np.array([[lab in g for lab in labels] for _, g, _ in rows], dtype=np.float32)
    sugg = np.array([[lab in s for lab in labels] for _, _, s in rows], dtype=np.int8)
    issues = li.find_label_issues([t for t, _, _ in rows], numbers, y, labels,
                                  y.astype(np.float64), sugg, use_cleanlab=False)
    li.write_label_issues(run, issues)
    return run, train


def accept(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rows.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_relabel_keeps_schema_and_changes_only_accepted_rows(tmp_path, capsys):
    run, train = fake_run(tmp_path)
    rows_txt = accept(tmp_path, "# reviewed\n3\n6  # board member\n\n7\n8\n5\n")
    assert relabel_main(["--run", str(run), "--accept", str(rows_txt)]) == 0
    out = run / "corrected.csv"
    assert train.read_bytes() == RAW  # the original, byte for byte
    data = out.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    old, new = RAW.split(b"\r\n"), data.split(b"\r\n")
    assert len(old) == len(new)
    changed = {i for i, (a, b) in enumerate(zip(old, new)) if a != b}
    assert changed == {2, 5, 6, 7}  # rows 3, 6, 7, 8 (row 4 is blank, row 5 keeps its labels)
    assert new[2] == b'"Sales; Key Accounts";Lead;Sales;'  # quoted title kept, Sales stays in Column 2
    assert new[5] == b"Board Member;Director;;"
    assert new[6] == b"Founder;;;"  # the empty label is written as empty cells
    assert new[7] == b"IT Lead;Senior;Information Technology;last"  # no line ending added at EOF
    printed = capsys.readouterr().out
    assert "4 rows relabelled (3, 6, 7, 8)" in printed and "already carry the suggested labels: 5" in printed
    reloaded = load_labeled_csv(out)
    assert dict(zip(reloaded.rows, reloaded.label_sets))[3] == ["Lead", "Sales"]
    assert sorted(p.name for p in run.iterdir()) == ["corrected.csv", "label_issues.csv", "run_info.json"]


def test_relabel_adds_a_label_column_when_a_row_needs_more(tmp_path):
    raw = b"Title;Column 1\nCEO & Founder;Chief Officer\nVP Sales;Vice President\n"
    rows = [("CEO & Founder", ["Chief Officer"], ["Chief Officer", "Owner"]),
            ("VP Sales", ["Vice President"], ["Vice President"])]
    run, train = fake_run(tmp_path, raw, rows)
    res = relabel(run, accept(tmp_path, "2\n"), tmp_path / "fixed.csv")
    assert res.added_columns == ["Column 2"] and res.changed == [2]
    assert (tmp_path / "fixed.csv").read_bytes() == b"Title;Column 1;Column 2\nCEO & Founder;Chief Officer;Owner\nVP Sales;Vice President\n"
    assert load_labeled_csv(tmp_path / "fixed.csv").label_sets[0] == ["Chief Officer", "Owner"]


@pytest.mark.parametrize("rows_text, match", [
    ("3\n42\n", r"rows.txt: row 42 is not in .*label_issues.csv"),
    ("3\nrow 5\n", r"rows.txt: line 2: expected one row number .* found 'row 5'"),
    ("# nothing yet\n", r"no row numbers"),
])
def test_relabel_rejects_bad_accept_files(tmp_path, rows_text, match):
    run, train = fake_run(tmp_path)
    with pytest.raises(UserError, match=match):
        relabel(run, accept(tmp_path, rows_text))
    assert not (run / "corrected.csv").exists() and train.read_bytes() == RAW


def test_relabel_refuses_changed_file_and_overwriting_it(tmp_path, capsys):
    run, train = fake_run(tmp_path)
    rows_txt = accept(tmp_path, "3\n")
    assert relabel_main(["--run", str(run), "--accept", str(rows_txt), "--output", str(train)]) == 2
    assert "is the training file" in capsys.readouterr().err and train.read_bytes() == RAW
    train.write_bytes(RAW + b"\r\nNew Title;Lead;Sales;")
    assert relabel_main(["--run", str(run), "--accept", str(rows_txt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "changed since the run" in err and "Traceback" not in err
    (run / "label_issues.csv").unlink()
    train.write_bytes(RAW)
    with pytest.raises(UserError, match="no label_issues.csv"):
        relabel(run, rows_txt)
    assert not (run / "corrected.csv").exists()


def test_relabel_on_a_real_run_folder(tiny_run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    info = json.loads((run / "run_info.json").read_text(encoding="utf-8"))
    train = Path(info["train_file"])
    before = train.read_bytes()
    titles, rows, y, labels, scores, predicted = li.read_oof_predictions(run / "oof_predictions.csv")
    # two suggestions that certainly differ from the given labels, whatever the tiny model learned
    predicted = np.array(predicted, copy=True)
    for i in (0, 1):
        predicted[i] = 0
        predicted[i, int(np.argmin(y[i]))] = 1  # a label the row does not have
    issues = li.find_label_issues(titles, rows, y, labels, scores, predicted)
    li.write_label_issues(run, issues)
    differ = [r for r in issues.rows if set(r.given) != set(r.suggested)][:3]
    assert len(differ) >= 2
    rows_txt = accept(tmp_path, "".join(f"{r.row}\n" for r in differ))
    assert relabel_main(["--run", str(run), "--accept", str(rows_txt)]) == 0
    assert train.read_bytes() == before
    old = load_labeled_csv(train, empty_label=info["config"]["project"]["empty_label"])
    new = load_labeled_csv(run / "corrected.csv", empty_label=info["config"]["project"]["empty_label"])
    old_sets, new_sets = dict(zip(old.rows, old.label_sets)), dict(zip(new.rows, new.label_sets))
    assert old_sets.keys() == new_sets.keys()
    accepted = {r.row: r for r in differ}
    for row, labs in new_sets.items():
        if row in accepted:
            assert sorted(labs) == sorted(accepted[row].suggested)
        else:
            assert labs == old_sets[row]
    old_lines, new_lines = before.decode().splitlines(), (run / "corrected.csv").read_text().splitlines()
    assert old_lines[0] == new_lines[0]
    assert {i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b} == set(accepted)


def test_run_writes_label_issues_and_the_report_section(tiny_run_dir):
    with open(tiny_run_dir / "label_issues.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert list(rows[0])[:5] == ["row", "title", "given", "suggested", "quality"]
    assert len(rows) == 85  # every row of the run
    with open(tiny_run_dir / "oof_predictions.csv", encoding="utf-8") as fh:
        predicted = {r["row"]: r["predicted"] for r in csv.DictReader(fh, delimiter=";")}
    assert all(r["suggested"] == predicted[r["row"]] for r in rows)  # the shipped rule's out-of-fold sets
    assert "## Label issues" in (tiny_run_dir / "report.md").read_text(encoding="utf-8")


def test_run_without_cleanlab_lists_conflicts_and_says_how(tiny_csv, tiny_model_dir, tmp_path, monkeypatch, capsys):
    import sys

    from conftest import tiny_train_argv
    from jobtitles.cli import train_main

    monkeypatch.setitem(sys.modules, "cleanlab", None)
    csv = tmp_path / "t.csv"
    csv.write_text(tiny_csv.read_text(encoding="utf-8") + "sales manager;Director;;\n", encoding="utf-8")
    out = tmp_path / "run"
    assert train_main(tiny_train_argv(csv, tiny_model_dir, out, "--final_model", "false", "--baseline", "false")) == 0
    printed = capsys.readouterr().out
    assert 'pip install "jobtitles[label-issues]"' in printed
    rows = (out / "label_issues.csv").read_text(encoding="utf-8").splitlines()
    assert sum(";conflict;" in r for r in rows) == 2
    assert "conflicting label sets" in (out / "report.md").read_text(encoding="utf-8")

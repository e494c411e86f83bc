"""Issue 30 (part): a retrain with --overwrite says what changed in its data since the folder's finished run
(run_info.json previous_run, one console line, one report.md line), and the filled output of `jobtitles suggest`
trains as it is."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from conftest import sample_rows, tiny_train_argv, write_csv
from jobtitles.cli import train_main
from jobtitles.core.data import load_labeled_csv
from jobtitles.core.io_utils import read_json
from jobtitles.train.previous_run import PreviousRun, compare, digest, previous_run
from jobtitles.train.run_folder import prepare_run_dir

REMOVED = ("Sales Manager", "Senior CFO EMEA")
RELABELLED = ("Analyst", ["Manager"])  # was Individual Contributor/Staff
ADDED = [("Chief Revenue Officer", ["Chief Officer"]), ("Regional Sales Manager", ["Manager"]),
         ("VP Customer Success", ["Vice President"]), ("Head of Data", ["Director"]),
         ("Support Engineer", ["Individual Contributor/Staff"])]


def quick_argv(csv: Path, model: Path, out: Path, *extra: str) -> list[str]:
    """The smallest real run that writes report.md and oof_predictions.csv: 2 folds, 10 steps per model."""
    return tiny_train_argv(csv, model, out, "--num_train_epochs", "1", "--min_train_steps", "10",
                           "--final_model", "false", "--baseline", "false", "--report_train_metrics", "false",
                           "--label_issues", "false", "--cpu_threads", "1", *extra)


def grown_rows() -> list[tuple[str, list[str]]]:
    """The sample with 2 titles removed, 1 relabelled, 5 added, and one kept title respelled (case and spacing
    only: the same title to the loader, so neither added nor removed)."""
    rows = []
    for title, labels in sample_rows():
        if title in REMOVED:
            continue
        if title == RELABELLED[0]:
            labels = RELABELLED[1]
        rows.append(("product   MANAGER" if title == "Product Manager" else title, labels))
    return rows + ADDED


def test_digest_compares_by_normalised_title_and_label_sets():
    old = digest(["VP Sales", "CEO", "CEO", "Analyst", "Dir. HR", "Owner"],
                 [["VP"], ["Chief"], ["Chief", "Owner"], ["IC"], ["Director"], ["Owner"]])
    assert old.rows == 6 and old.titles["ceo"] == (2, frozenset({frozenset({"Chief"}), frozenset({"Chief", "Owner"})}))
    new = digest(["vp  SALES", "CEO", "CEO", "Analyst", "Owner", "CTO", "Founder", "CTO"],
                 [["VP"], ["Owner", "Chief"], ["Chief"], ["Manager"], ["Owner"], ["Chief"], ["Owner"], ["IC"]])
    # added: CTO (2 rows) and Founder; removed: Dir. HR; relabelled: Analyst only (the respelled VP Sales is the
    # same title with the same labels; CEO's two label sets are the same in another order)
    assert compare(old, new) == (3, 1, 1)
    assert compare(new, old) == (1, 3, 1)
    assert compare(old, old) == (0, 0, 0)


def test_finished_run_with_foreign_or_unreadable_oof_warns_and_goes_on(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_info.json").write_text(json.dumps({"fingerprint": {"csv_sha256": "0" * 64, "settings": {}},
                                                   "finished_at": "2024-01-02T03:04:05+00:00"}))
    (run / "cv_results.json").write_text(json.dumps({"complete": True}))
    (run / "oof_predictions.csv").write_text("Title;Column 1\nCEO;Chief Officer\n")  # the user's CSV, not ours
    info = {"fingerprint": {"csv_sha256": "1" * 64, "settings": {}}}
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        resumed = prepare_run_dir(run, info, True, lambda d, old: previous_run(d, old, ["CEO"], [["Chief Officer"]]))
    assert resumed is False
    assert "previous_run" not in read_json(run / "run_info.json")
    assert not (run / "oof_predictions.csv").exists()  # --overwrite went on and removed the earlier files
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "oof_predictions.csv: cannot compare" in warnings[0] and "header" in warnings[0]
    # bytes that are no UTF-8: the same one warning
    (run / "cv_results.json").write_text(json.dumps({"complete": True}))
    (run / "oof_predictions.csv").write_bytes(b"row;title;gold\n2;\xff\xfe;X\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        assert previous_run(run, {}, ["CEO"], [["Chief Officer"]]) is None
    assert len(caplog.records) == 1 and "UnicodeDecodeError" in caplog.records[0].getMessage()
    # an earlier run that never finished: nothing to say, no warning
    (run / "cv_results.json").write_text(json.dumps({"complete": False}))
    caplog.clear()
    assert previous_run(run, {}, ["CEO"], [["Chief Officer"]]) is None and not caplog.records


def test_retrain_says_what_changed_since_the_previous_run(tiny_model_dir, tmp_path, caplog):
    base = write_csv(tmp_path / "titles.csv", sample_rows())
    grown = write_csv(tmp_path / "grown.csv", grown_rows())
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="jobtitles"):
        assert train_main(quick_argv(base, tiny_model_dir, out)) == 0
    # a first run in a fresh folder: nothing said
    first = read_json(out / "run_info.json")
    assert "previous_run" not in first
    assert "previous run" not in caplog.text and "previous run" not in (out / "report.md").read_text()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jobtitles"):
        assert train_main(quick_argv(grown, tiny_model_dir, out, "--overwrite", "true")) == 0
    previous = read_json(out / "run_info.json")["previous_run"]
    sha = hashlib.sha256(base.read_bytes()).hexdigest()
    assert previous == {"rows": 85, "added": 5, "removed": 2, "relabelled": 1,
                        "finished_at": first["finished_at"], "csv_sha256": sha}
    line = (f"data: 88 usable rows, 5 added since the previous run of this folder (85 rows, finished "
            f"{first['finished_at']}), 2 removed, 1 relabelled")
    assert [r.getMessage() for r in caplog.records].count(line) == 1
    report_line = (f"Since the previous run of this folder (85 rows, finished {first['finished_at']}, CSV SHA-256 "
                   f"`{sha[:12]}…`): 5 rows added, 2 removed, 1 relabelled.")
    report = (out / "report.md").read_text()
    assert report_line in report.splitlines() and "88 titles used" in report
    assert "previous_run" not in read_json(out / "cv_results.json")  # the folder's history, not a result

    # a resumed run (killed after its report, before cv_results.json and finished_at) keeps what it recorded when
    # it started, though the folder now holds its own oof_predictions.csv: no fold trains again
    (out / "cv_results.json").unlink()
    (out / "report.md").unlink()
    info = read_json(out / "run_info.json")
    (out / "run_info.json").write_text(json.dumps({k: v for k, v in info.items()
                                                   if k not in ("finished_at", "finishing_session_seconds")}))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jobtitles"):
        assert train_main(quick_argv(grown, tiny_model_dir, out, "--overwrite", "true")) == 0
    assert "skipped (resume)" in caplog.text
    resumed = read_json(out / "run_info.json")
    assert resumed["previous_run"] == previous and len(resumed["resumed"]) == 1
    assert [r.getMessage() for r in caplog.records].count(line) == 1
    assert report_line in (out / "report.md").read_text().splitlines()


def test_filled_suggestions_csv_trains_as_it_is(tmp_path, caplog):
    """`jobtitles suggest` writes its extra columns after the label columns; filled in, the file loads with the
    loader's one warning about the columns it ignores."""
    path = tmp_path / "suggested.csv"
    path.write_text("Title;Column 1;Column 2;Column 3;suggested_labels;reason;pool_count;rank\n"
                    "VP Sales;Vice President;;;Vice President;uncertain;3;1\n"
                    "CFO;Chief Officer;;;Chief Officer|Director;two labels close;1;2\n"
                    "Director / Manager;Director;Manager;;Director;rare label;2;3\n"
                    "Analyst;Individual Contributor/Staff;;;Manager;disagreement;1;4\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="jobtitles"):
        data = load_labeled_csv(path)
    assert data.titles == ["VP Sales", "CFO", "Director / Manager", "Analyst"]
    assert data.label_sets == [["Vice President"], ["Chief Officer"], ["Director", "Manager"],
                               ["Individual Contributor/Staff"]]
    assert data.labels == ["Chief Officer", "Director", "Individual Contributor/Staff", "Manager", "Vice President"]
    assert data.rows == [2, 3, 4, 5]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"{path}: columns ['suggested_labels', 'reason', 'pool_count', 'rank'] ignored: only "
                        "'Title' and 'Column N' columns are read"]


def test_previous_run_from_run_info_refuses_odd_values():
    good = {"rows": 3, "added": 1, "removed": 0, "relabelled": 2, "finished_at": "2024-01-02T03:04:05+00:00",
            "csv_sha256": "a" * 64}
    assert PreviousRun.from_json(good) == PreviousRun(3, 1, 0, 2, good["finished_at"], "a" * 64)
    assert PreviousRun.from_json({**good, "added": -1}) is None
    assert PreviousRun.from_json({**good, "rows": True}) is None
    assert PreviousRun.from_json({k: v for k, v in good.items() if k != "rows"}) is None
    # text that would go into report.md as it is: only a time and a SHA-256 are kept
    odd = PreviousRun.from_json({**good, "finished_at": "<img src=x onerror=alert(1)>", "csv_sha256": "`x`"})
    assert odd is not None and odd.finished_at is None and odd.csv_sha256 is None

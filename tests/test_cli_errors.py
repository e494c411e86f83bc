"""Bad input to train.py: one line naming the file/row/key and the fix, exit code 2, no traceback."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_train(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *argv], capture_output=True, text=True,
                          cwd=tmp_path, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("setup,argv,pattern", [
    (None, ["--train_file", "nope.csv"], r"nope\.csv: file not found"),
    ({"c.yaml": "lerning_rate: 1.0e-4\n"}, ["--config", "c.yaml"], r"c\.yaml: unknown config key 'lerning_rate'"),
    ({"t.csv": "Title,Column 1\nCEO,Chief Officer\n"}, ["--train_file", "t.csv"], r"looks comma-delimited"),
    ({"t.csv": "Job;Column 1\nCEO;Chief Officer\n"}, ["--train_file", "t.csv"], r"no 'Title' column"),
    ({"t.csv": ""}, ["--train_file", "t.csv"], r"t\.csv: the file is empty"),
    ({"t.csv": "Title;Column 1\n;Chief Officer\nCEO;Chief Officer\nVP;VP\n"},
     ["--train_file", "t.csv", "--empty_titles", "error"], r"empty title in rows 2"),
    (None, ["--num_train_epochs", "many"], r"argument --num_train_epochs.*invalid float value: 'many'"),
    (None, ["--push_to_hub", "true"], r"push_to_hub is true but hub_model_id is not set"),
    (None, ["--model_name_or_path", "/no/such/model", "--train_file", str(ROOT / "data" / "job_titles.csv")],
     r"model_name_or_path '/no/such/model': cannot load a model config"),
])
def test_train_bad_input(tmp_path, monkeypatch, capsys, setup, argv, pattern):
    """In-process through the real CLI entry (fast); one case below runs the script itself."""
    from jobtitles.cli import train_main

    for name, text in (setup or {}).items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert train_main([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    errors = [l for l in err.splitlines() if l.startswith("error: ")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), err[-2000:]


def test_train_script_exits_2_without_traceback(tmp_path):
    (tmp_path / "c.yaml").write_text("n_splits: one\n")
    proc = run_train(tmp_path, "--config", "c.yaml")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: c.yaml: key 'n_splits' expects int, found 'one'"

"""The installed commands: `jobtitles <command>` and `python -m jobtitles <command>` run the same code as the
scripts, the configs travel inside the package (a wheel trains with `--config base` from any folder), and
`--help` leads with the project's own settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobtitles.train.config import PACKAGED_CONFIGS, build_parser, parse_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
SCRIPT = Path(sys.executable).with_name("jobtitles")  # console script of `pip install -e .`


def run(*argv: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, env=env or ENV, timeout=300)


def test_the_installed_command_lists_every_command():
    assert SCRIPT.is_file(), "pip install -e . installs the jobtitles console script"
    proc = run(str(SCRIPT), "--help")
    assert proc.returncode == 0
    for name in ("train", "predict", "serve", "export", "relabel", "suggest", "spark-predict"):
        assert f"\n  {name} " in proc.stdout, name
    bare = run(str(SCRIPT))
    assert bare.returncode == 2 and "usage: jobtitles <command>" in bare.stderr
    typo = run(sys.executable, "-m", "jobtitles", "predcit")
    assert typo.returncode == 2 and typo.stderr.strip() == \
        "error: unknown command 'predcit'; did you mean 'predict'? (expected one of: train, predict, serve, " \
        "export, relabel, suggest, spark-predict)"


def test_commands_answer_as_the_scripts_do(tiny_run_dir):
    model = str(tiny_run_dir / "model")
    script = run(sys.executable, str(ROOT / "predict.py"), "--model", model, "VP of Sales", "CEO & Founder")
    installed = run(str(SCRIPT), "predict", "--model", model, "VP of Sales", "CEO & Founder")
    module = run(sys.executable, "-m", "jobtitles", "predict", "--model", model, "VP of Sales", "CEO & Founder")
    assert script.returncode == installed.returncode == module.returncode == 0, installed.stderr
    assert script.stdout == installed.stdout == module.stdout and "VP of Sales" in script.stdout
    err = run(str(SCRIPT), "export", "--model", str(ROOT / "nowhere"))
    assert err.returncode == 2 and err.stderr.startswith("error: ") and "Traceback" not in err.stderr
    helps = run(str(SCRIPT), "train", "--help")
    assert helps.returncode == 0 and helps.stdout.startswith("usage: jobtitles train ")


def test_help_leads_with_config_and_the_project_settings_by_purpose():
    text = build_parser().format_help()
    order = ["--config FILE_OR_NAME", "\ndata: ", "\nmodel: ", "\ndecisions: ", "\nrun: ",
             "\ntransformers.TrainingArguments"]
    at = [text.index(marker) for marker in order]
    assert at == sorted(at), dict(zip(order, at))
    trainer_part = text[at[-1]:]
    assert "--learning_rate" in trainer_part and "--train_file" not in trainer_part
    assert "--decision_threshold" in text[at[3]:at[4]] and "--n_splits" in text[at[4]:at[5]]
    assert text.splitlines()[0].endswith(" [-h] [--config FILE_OR_NAME] [--SETTING VALUE ...]")  # not 140 lines


def test_configs_by_name_are_the_repository_s_files():
    for name in ("base", "distilbert"):
        assert (ROOT / "configs" / f"{name}.yaml").resolve() == (PACKAGED_CONFIGS / f"{name}.yaml").resolve()
        by_name = parse_config(["--config", name])
        by_path = parse_config(["--config", str(ROOT / "configs" / f"{name}.yaml")])
        assert by_name[0] == by_path[0] and by_name[1].to_dict() == by_path[1].to_dict()
    default = parse_config([])  # no --config: the packaged base config
    assert default[1].learning_rate == 2.0e-4 and default[1].output_dir == "outputs/base"


def test_a_wheel_carries_the_configs_and_the_command(tmp_path):
    # built from a copy without earlier build output: setuptools would reuse an old egg-info's file list
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".ci-venv", "build", "*.egg-info", "outputs", "__pycache__", ".pytest_cache", "mlruns"))
    proc = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w",
               str(tmp_path / "dist"), str(source))
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed: {proc.stderr[-2000:]}")
    (wheel,) = (tmp_path / "dist").glob("jobtitles-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        zf.extractall(tmp_path / "site")
    assert {"jobtitles/configs/base.yaml", "jobtitles/configs/distilbert.yaml", "jobtitles/__main__.py"} <= names
    assert "jobtitles = jobtitles.__main__:main" in entry
    # the unpacked wheel, from a folder without configs/: the base config is found by name
    check = ("import json, jobtitles; from jobtitles.train.config import parse_config; "
             "p, t = parse_config(['--config', 'base']); "
             "print(json.dumps([jobtitles.__file__, p.model.model_name_or_path, t.learning_rate]))")
    out = run(sys.executable, "-c", check, cwd=tmp_path, env={**ENV, "PYTHONPATH": str(tmp_path / "site")})
    assert out.returncode == 0, out.stderr
    where, model, lr = json.loads(out.stdout)
    assert where.startswith(str(tmp_path / "site")) and model == "embedded" and lr == 2.0e-4

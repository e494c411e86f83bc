from pathlib import Path

import pytest

from jobtitles.train.config import parse_config
from jobtitles.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_shipped_configs_parse():
    project, training = parse_config(["--config", str(ROOT / "configs" / "base.yaml")])
    assert project.model.model_name_or_path == "embedded"
    assert training.learning_rate == pytest.approx(2e-4)
    assert training.output_dir == "outputs/base"
    project, training = parse_config(["--config", str(ROOT / "configs" / "distilbert.yaml")])
    assert project.model.model_name_or_path == "distilbert-base-uncased"
    assert (training.per_device_train_batch_size, training.num_train_epochs, training.learning_rate) == (4, 3, 2e-5)
    assert project.model.max_length == 128 and project.run.n_splits == 5
    # the classic recipe, not the project's head, loss and step defaults
    m = project.model
    assert (m.head_init, m.pos_weight, m.min_train_steps, m.step_growth) == ("random", "none", 0, "linear")


def test_yaml_sets_defaults_and_cli_overrides(tmp_path):
    cfg = write(tmp_path, "learning_rate: 5e-5\nnum_train_epochs: 2\nempty_label: null\nlabel_thresholds: {Owner: 0.3}\n")
    project, training = parse_config(["--config", cfg, "--num_train_epochs", "7"])
    assert training.learning_rate == pytest.approx(5e-5)  # YAML's string '5e-5' converted like the CLI does
    assert training.num_train_epochs == 7
    assert project.data.empty_label is None
    assert project.decision.label_threshold_map() == {"Owner": 0.3}
    assert training.output_dir == "outputs/c"  # from the config file's name


def test_unknown_yaml_key_names_it_and_suggests(tmp_path):
    cfg = write(tmp_path, "learnin_rate: 1.0e-4\n")
    with pytest.raises(UserError, match=r"c\.yaml: unknown config key 'learnin_rate'; did you mean 'learning_rate'\?"):
        parse_config(["--config", cfg])


def test_non_numeric_and_bad_choice_values(tmp_path):
    with pytest.raises(UserError, match=r"key 'learning_rate' expects float, found 'fast'"):
        parse_config(["--config", write(tmp_path, "learning_rate: fast\n")])
    with pytest.raises(UserError, match=r"key 'pos_weight' must be one of .*found 'heavy'"):
        parse_config(["--config", write(tmp_path, "pos_weight: heavy\n")])
    with pytest.raises(UserError, match=r"command line: argument --n_splits.*invalid int value: 'x'"):
        parse_config(["--n_splits", "x"])


def test_unknown_cli_flag_and_bad_values():
    with pytest.raises(UserError, match=r"unknown arguments \['--learning_rat', '1'\]"):
        parse_config(["--learning_rat", "1"])
    with pytest.raises(UserError, match="n_splits must be at least 2, found 1"):
        parse_config(["--n_splits", "1"])
    with pytest.raises(UserError, match="config file .*missing.yaml not found"):
        parse_config(["--config", "missing.yaml"])

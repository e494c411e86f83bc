"""The step rule: the configured epochs up to step_growth_from rows, then steps growing with the square root of
the rows; a real tiny run trains the capped steps and records them."""

from __future__ import annotations

import math

import pytest

from conftest import tiny_train_argv
from jobtitles.cli import train_main
from jobtitles.core.io_utils import read_json
from jobtitles.train.config import parse_config
from jobtitles.train.step_rule import capped_steps, epoch_steps, steps_rule


def defaults(*flags: str):
    return parse_config(["--config", "base", *flags])


def test_sets_up_to_the_growth_point_train_the_configured_epochs():
    project, training = defaults()
    rule = steps_rule(project, training)
    assert rule(1792) == epoch_steps(training, 1792, 200) == 224  # 56 batches of 32 x 4 epochs
    assert rule(6000) == 752
    assert capped_steps(project, training, [1792, 5840, 6000]) == [None, None, None]


def test_larger_sets_grow_with_the_square_root_of_their_rows():
    project, training = defaults()
    rule = steps_rule(project, training)
    assert rule(100_000) == math.ceil(752 * math.sqrt(100_000 / 6000)) == 3071  # 0.98 epochs, not 4
    assert rule(400_000) == math.ceil(752 * 2 * math.sqrt(100_000 / 6000))
    assert capped_steps(project, training, [7300, 100_000]) == [830, 3071]


@pytest.mark.parametrize("flags,n,steps", [(["--step_growth", "linear"], 100_000, 12_500),
                                           (["--max_steps", "50"], 100_000, 50),
                                           (["--step_growth_from", "100", "--min_train_steps", "900"], 1000, 928)])
def test_linear_growth_max_steps_and_the_step_floor_win(flags, n, steps):
    # the floor: 900 steps in whole epochs of 32 batches is 29 epochs, 928 steps; the cap (above it) is not used
    project, training = defaults(*flags)
    assert steps_rule(project, training)(n) == steps


def test_a_tiny_run_trains_the_capped_steps(tiny_csv, tiny_model_dir, tmp_path, caplog):
    # 2 folds of 42-43 rows and a final model on 85: from 20 rows, steps grow as sqrt(n / 20) x the 80 (min)
    out = tmp_path / "run"
    argv = tiny_train_argv(tiny_csv, tiny_model_dir, out, "--step_growth_from", "20", "--min_train_steps", "0",
                           "--num_train_epochs", "40", "--label_issues", "false")
    assert train_main(argv) == 0
    res = read_json(out / "cv_results.json")
    # 20 rows: 2 batches of 16 x 40 epochs = 80 steps; x sqrt(42/20) = 116, x sqrt(43/20) = 118, x sqrt(85/20) = 165
    assert sorted(f["steps"] for f in res["folds"]) == [116, 118] and res["final_steps"] == 165
    assert "step_growth sqrt from 20 rows" in caplog.text

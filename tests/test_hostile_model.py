"""A model folder from someone else: nothing in it runs code, every saved key of the rule is checked, and the
prediction side stands without the training side."""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jobtitles.core.baseline_store import BASELINE_FILE
from jobtitles.core.errors import UserError

SRC = Path(__file__).resolve().parents[1] / "src" / "jobtitles"


@pytest.fixture()
def model_copy(tiny_run_dir, tmp_path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(tiny_run_dir / "model", model)
    return model


def edit_config(model: Path, change) -> None:
    cfg = json.loads((model / "config.json").read_text(encoding="utf-8"))
    change(cfg)
    (model / "config.json").write_text(json.dumps(cfg), encoding="utf-8")


def send_to_baseline(cfg: dict) -> None:
    cfg["decision_score_sources"] = {cfg["id2label"]["0"]: "baseline"}


def test_baseline_made_of_functions_is_refused_before_anything_is_built(model_copy, monkeypatch):
    """A Pipeline of FunctionTransformers over numpy functions passes a 'numpy.'/'sklearn.' prefix check; such a
    function is called with the titles on the first prediction. The exact allow-list refuses the file before
    skops builds a single object."""
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from jobtitles import TitleClassifier

    sio.dump(make_pipeline(FunctionTransformer(np.char.upper), FunctionTransformer(np.asarray)),
             model_copy / BASELINE_FILE)
    edit_config(model_copy, send_to_baseline)
    built = []
    monkeypatch.setattr(sio, "load", lambda *a, **k: built.append(a))
    with pytest.raises(UserError, match=r"baseline\.skops: holds 3 types the project never writes \(numpy\.asarray "
                                        r"\(TypeNode\), numpy\..*upper \(FunctionNode\), sklearn\.preprocessing\."
                                        r"_function_transformer\.FunctionTransformer \(ObjectNode\)\); refusing"):
        TitleClassifier(model_copy)
    assert built == []


def test_baseline_of_allowed_types_that_does_not_score_the_labels_is_refused(model_copy, tiny_csv):
    from jobtitles.core.baseline import fit_baseline
    from jobtitles.core.baseline_store import save_baseline

    from jobtitles import TitleClassifier

    edit_config(model_copy, send_to_baseline)
    save_baseline(fit_baseline(["vp sales", "ceo", "cto", "analyst"], np.array([[1, 0], [0, 1], [0, 1], [1, 0]])),
                  model_copy)
    with pytest.raises(UserError, match=r"the baseline scores 2 labels per title \(expected 7 probabilities\)"):
        TitleClassifier(model_copy)
    (model_copy / BASELINE_FILE).write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(UserError, match=r"baseline\.skops: not a skops file written by train\.py"):
        TitleClassifier(model_copy)


def test_the_project_s_own_baseline_passes_the_allow_list(model_copy, tiny_csv):
    from jobtitles.core.baseline import fit_baseline
    from jobtitles.core.baseline_store import load_baseline, save_baseline
    from jobtitles.core.data import load_labeled_csv

    data = load_labeled_csv(tiny_csv)
    save_baseline(fit_baseline(data.titles, data.y), model_copy)
    base = load_baseline(model_copy, len(data.labels))
    assert base.predict_proba(np.asarray(["CEO"], dtype=object)).shape == (1, len(data.labels))


BAD_KEYS = [
    ("threshold 5.0", lambda c: c["decision_thresholds"].update(Manager=5.0),
     r"decision_thresholds\['Manager'\] must be a number from 0 to 1, found 5\.0"),
    ("threshold -1", lambda c: c["decision_thresholds"].update(Manager=-1),
     r"must be a number from 0 to 1, found -1"),
    ("threshold NaN", lambda c: c["decision_thresholds"].update(Manager=math.nan),
     r"must be a number from 0 to 1, found nan"),
    ("threshold string", lambda c: c["decision_thresholds"].update(Manager="high"),
     r"must be a number from 0 to 1, found 'high'"),
    ("threshold bool", lambda c: c["decision_thresholds"].update(Manager=True),
     r"must be a number from 0 to 1, found True"),
    ("thresholds a list", lambda c: c.update(decision_thresholds=[0.5]),
     r"decision_thresholds must be a mapping from label to threshold, found list"),
    ("thresholds of other labels", lambda c: c["decision_thresholds"].update(Nobody=0.5),
     r"config.json thresholds are for labels .*'Nobody'.* the folder mixes two runs"),
    ("at_least_one a string", lambda c: c.update(decision_at_least_one="false"),
     r"decision_at_least_one must be true or false, found 'false'"),
    ("exclusive unknown", lambda c: c.update(decision_exclusive_label="Nobody"),
     r"decision_exclusive_label must be null or one of the model's labels .*found 'Nobody'"),
    ("group unknown label", lambda c: c.update(decision_label_groups=[
        {"name": "g", "labels": ["Manager", "Nobody"], "kind": "exactly_one"}]),
     r"decision_label_groups\[0\] must name at least 2 distinct labels of the model .*'Nobody'"),
    ("group unknown kind", lambda c: c.update(decision_label_groups=[
        {"name": "g", "labels": ["Manager", "Director"], "kind": "several"}]),
     r"decision_label_groups\[0\] must be a list of \{name, labels, kind\} with kind exactly_one or at_most_one"),
    ("group a string", lambda c: c.update(decision_label_groups="Manager"),
     r"decision_label_groups must be a list of .*found str"),
    ("label in two groups", lambda c: c.update(decision_label_groups=[
        {"name": "a", "labels": ["Manager", "Director"], "kind": "exactly_one"},
        {"name": "b", "labels": ["Director", "Owner"], "kind": "at_most_one"}]),
     r"label 'Director' is in groups 0 and 1"),
    ("softmax group unknown label", lambda c: c.update(score_softmax_groups=[
        {"name": "g", "labels": ["X", "Y"], "kind": "exactly_one"}]),
     r"score_softmax_groups\[0\] must name at least 2 distinct labels"),
    ("source oracle", lambda c: c.update(decision_score_sources={"Manager": "oracle"}),
     r"decision_score_sources maps 'Manager' to 'oracle'; expected labels of the model .* and sources "
     r"\['transformer', 'baseline', 'blend'\]"),
    ("source unknown label", lambda c: c.update(decision_score_sources={"Nobody": "baseline"}),
     r"decision_score_sources maps 'Nobody' to 'baseline'"),
    ("sources a list", lambda c: c.update(decision_score_sources=["Manager"]),
     r"decision_score_sources must be a mapping from label to one of"),
    ("id2label with a gap", lambda c: c.update(id2label={**{k: v for k, v in c["id2label"].items() if k != "1"},
                                                          "9": "Extra"}),
     r"id2label must map '0'\.\.'6' to distinct label names"),
    ("id2label duplicate names", lambda c: c["id2label"].update({"1": c["id2label"]["0"]}),
     r"id2label must map '0'\.\.'6' to distinct label names"),
    ("id2label not a mapping", lambda c: c.update(id2label=["a", "b"]),
     r"not a trained multi-label classifier"),
    ("label2id disagrees", lambda c: c.update(label2id={v: 0 for v in c["id2label"].values()}),
     r"label2id does not match id2label"),
    ("positions not a number", lambda c: c.update(max_position_embeddings="many"),
     r"max_position_embeddings must be a whole number from 1 to 1,048,576, found 'many'"),
]


@pytest.mark.parametrize("change,message", [case[1:] for case in BAD_KEYS], ids=[case[0] for case in BAD_KEYS])
def test_every_saved_decision_key_is_checked(model_copy, change, message):
    from jobtitles import TitleClassifier

    edit_config(model_copy, change)
    with pytest.raises(UserError, match=message) as err:
        TitleClassifier(model_copy)
    assert str(model_copy) in str(err.value) and "\n" not in str(err.value)


def test_config_that_is_not_an_object_or_not_utf8(model_copy):
    from jobtitles import TitleClassifier

    (model_copy / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(UserError, match=r"config.json: expected a JSON object, found a list"):
        TitleClassifier(model_copy)
    (model_copy / "config.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(UserError, match=r"config.json: not valid JSON"):
        TitleClassifier(model_copy)
    (model_copy / "config.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(UserError, match=r"config.json: not valid JSON"):
        TitleClassifier(model_copy)


def test_predict_cli_refuses_a_bad_rule_in_one_line(model_copy, capsys):
    from jobtitles.cli import predict_main

    edit_config(model_copy, lambda c: c["decision_thresholds"].update(Manager="high"))
    assert predict_main(["--model", str(model_copy), "VP of Sales"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "found 'high'" in err[0]


def test_pickled_weights_are_never_loaded(model_copy):
    """transformers would fall back to pytorch_model.bin (a pickle) when model.safetensors is missing."""
    import torch

    from jobtitles import TitleClassifier

    from safetensors.torch import load_file
    torch.save(load_file(model_copy / "model.safetensors"), model_copy / "pytorch_model.bin")
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(UserError, match=r"the model weights do not load .*model\.safetensors is needed"):
        TitleClassifier(model_copy)


def test_huge_titles_are_cut_and_flagged_the_same_everywhere(tiny_run_dir):
    from jobtitles import TitleClassifier
    from jobtitles.serve.predictor import Predictor
    from jobtitles.core.titles import MAX_TITLE_CHARS

    clf = TitleClassifier(tiny_run_dir / "model")
    huge = "Director " * 200_000  # 1.8 MB: under the server's body limit
    scores, cut = clf.score_titles([huge, "VP of Sales", "word " * 100])
    assert cut == [True, False, True]  # cut by characters; cut by tokens (max_length)
    assert np.allclose(scores[0], clf.predict_scores(huge[:MAX_TITLE_CHARS]))
    served = Predictor(clf).predict([huge, "VP of Sales"])
    assert [p.truncated for p in served] == [True, False]
    assert served[0].labels == clf.predict(huge[:MAX_TITLE_CHARS])


def test_lone_surrogates_and_non_strings(tiny_run_dir):
    from jobtitles import TitleClassifier

    clf = TitleClassifier(tiny_run_dir / "model")
    assert np.allclose(clf.predict_scores(["VP \ud800 Sales"]), clf.predict_scores(["VP \ufffd Sales"]))
    with pytest.raises(UserError, match=r"title 1 must be a string, found int \(5\)"):
        clf.predict(["VP", 5])


def test_training_cuts_huge_titles_like_prediction(tmp_path):
    from conftest import sample_rows, write_csv

    from jobtitles.core.data import load_labeled_csv
    from jobtitles.core.titles import MAX_TITLE_CHARS

    rows = sample_rows() + [("Chief " * 400, ["Chief Officer"])]
    data = load_labeled_csv(write_csv(tmp_path / "long.csv", rows))
    assert max(len(t) for t in data.titles) == MAX_TITLE_CHARS


# --- the prediction side stands alone -------------------------------------------------------------------------
# The packages a model folder's user runs, and the one they share with training; none may reach the others.
PREDICTION = ("predict", "serve", "core", "active")
TRAINING = ("train", "selection", "reporting")


def _imports(module_file: Path) -> set[str]:
    """jobtitles modules a file imports anywhere (also inside functions), as names under jobtitles."""
    found = set()
    for node in ast.walk(ast.parse(module_file.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        found |= {n.split(".", 1)[1] for n in names if n.startswith("jobtitles.")}
    return found


def test_prediction_packages_never_import_training_code_even_lazily():
    files = [f for package in PREDICTION for f in sorted((SRC / package).glob("*.py"))]
    assert len(files) > 30  # the packages were found
    reached = {f"{f.parent.name}/{f.name} imports jobtitles.{dep}" for f in files for dep in _imports(f)
               if dep.split(".")[0] in TRAINING or dep in ("cli",)}
    assert reached == set()


def test_importing_the_prediction_side_loads_no_training_module():
    code = ("import sys, jobtitles.predict.inference, jobtitles.serve.app, jobtitles.predict.spark, "
            "jobtitles.predict.spark_predict, jobtitles.predict.predict_cli, jobtitles.predict.export, "
            "jobtitles.export, jobtitles.spark_predict, jobtitles.active.suggest_cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in (%s) or m == 'transformers.trainer'))"
            % ", ".join(repr(["jobtitles", t]) for t in TRAINING))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- found by a red-team pass ---------------------------------------------------------------------------------
def test_a_folder_s_own_code_never_runs_nor_asks(model_copy, tmp_path, monkeypatch):
    """An unknown model_type with auto_map: transformers asks "run the custom code? [y/N]" on stdin, where
    predict.py reads titles, unless trust_remote_code is False."""
    from jobtitles import TitleClassifier

    marker = tmp_path / "ran"
    (model_copy / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    edit_config(model_copy, lambda c: c.update(model_type="evilx", auto_map={
        "AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel"}))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("yes\n" * 5))
    with pytest.raises(UserError):
        TitleClassifier(model_copy)
    assert not marker.exists()


@pytest.mark.parametrize("attribute,value", [("token_pattern", r"(?:\w+)+!"), ("input", "filename"),
                                             ("ngram_range", (1, 1000))])
def test_baseline_with_hostile_settings_is_refused(model_copy, tiny_csv, attribute, value):
    from jobtitles.core.baseline import fit_baseline
    from jobtitles.core.baseline_store import save_baseline
    from jobtitles.core.data import load_labeled_csv

    from jobtitles import TitleClassifier

    data = load_labeled_csv(tiny_csv)
    base = fit_baseline(data.titles, data.y)
    setattr(base.steps[0][1].transformer_list[0][1], attribute, value)
    save_baseline(base, model_copy)
    edit_config(model_copy, send_to_baseline)
    with pytest.raises(UserError, match=rf"the baseline's settings differ from the ones train.py writes "
                                        rf"\(featureunion__word__{attribute}="):
        TitleClassifier(model_copy)


def test_weights_that_do_not_match_or_score_nan_are_refused(model_copy):
    from safetensors.torch import load_file, save_file

    from jobtitles import TitleClassifier

    weights = load_file(model_copy / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, model_copy / "model.safetensors")
    with pytest.raises(UserError, match=r"model.safetensors does not match config.json \(missing keys: "
                                        r"\['classifier\.(weight|bias)'"):
        TitleClassifier(model_copy)
    weights["classifier.bias"][:] = float("nan")
    save_file(weights, model_copy / "model.safetensors")
    with pytest.raises(UserError, match=r"the torch model scores a title as \[\[nan.*expected 7 finite scores"):
        TitleClassifier(model_copy)


def test_architecture_sizes_and_shards_are_bounded(model_copy):
    from jobtitles import TitleClassifier

    edit_config(model_copy, lambda c: c.update(n_layers=5000))
    with pytest.raises(UserError, match=r"n_layers must be a whole number from 1 to 96, found 5000"):
        TitleClassifier(model_copy)
    edit_config(model_copy, lambda c: c.update(n_layers=2))
    (model_copy / "model.safetensors.index.json").write_text('{"weight_map": {"x": "../other.safetensors"}}')
    with pytest.raises(UserError, match=r"model.safetensors.index.json: a sharded checkpoint"):
        TitleClassifier(model_copy)


def test_a_planted_partial_link_never_receives_the_predictions(tiny_run_dir, tmp_path):
    from jobtitles.cli import predict_main

    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (tmp_path / "out.csv.partial").symlink_to(precious)
    assert predict_main(["--model", str(tiny_run_dir / "model"), "VP of Sales", "--output",
                         str(tmp_path / "out.csv")]) == 0
    assert precious.read_text() == "keep me\n"
    assert not (tmp_path / "out.csv").is_symlink() and "VP of Sales" in (tmp_path / "out.csv").read_text()

"""The Hub path goes through huggingface_hub's own API (no network here: the API object is replaced)."""

from pathlib import Path

import huggingface_hub
from transformers import TrainingArguments

from jobtitles.train.hub import push


def test_push_uploads_the_model_folder_once_without_its_training_titles(tmp_path, monkeypatch):
    """The folder goes up in one commit; parity_rows.csv (training titles, for the int8 check) stays local:
    huggingface_hub's own filter, given the patterns push passes, drops it and keeps the rest."""
    from huggingface_hub.utils import filter_repo_objects

    calls, ignored = [], []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message, ignore_patterns=None):
            calls.append(("upload_folder", repo_id, Path(folder_path)))
            ignored.extend(ignore_patterns or [])

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    args = TrainingArguments(output_dir=str(tmp_path), push_to_hub=True, hub_model_id="me/job-levels",
                             hub_token="hf_x", report_to="none")
    push(tmp_path / "model", args)
    assert calls == [("init", "hf_x"), ("create_repo", "me/job-levels", False, True),
                     ("upload_folder", "me/job-levels", tmp_path / "model")]
    files = ["config.json", "model.safetensors", "README.md", "parity_rows.csv", "onnx/model_int8.onnx"]
    assert list(filter_repo_objects(files, ignore_patterns=ignored)) == [f for f in files if f != "parity_rows.csv"]

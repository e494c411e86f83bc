"""The Hub path goes through huggingface_hub's own API (no network here: the API object is replaced)."""

from pathlib import Path

import huggingface_hub
from transformers import TrainingArguments

from jobtitles.train.hub import push


def test_push_uploads_the_model_folder_once(tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=False, exist_ok=False):
            calls.append(("create_repo", repo_id, private, exist_ok))

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls.append(("upload_folder", repo_id, Path(folder_path)))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    args = TrainingArguments(output_dir=str(tmp_path), push_to_hub=True, hub_model_id="me/job-levels",
                             hub_token="hf_x", report_to="none")
    push(tmp_path / "model", args)
    assert calls == [("init", "hf_x"), ("create_repo", "me/job-levels", False, True),
                     ("upload_folder", "me/job-levels", tmp_path / "model")]

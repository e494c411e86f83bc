"""Fast prediction from a saved model folder: length-sorted batches, per-batch padding, saved thresholds.

    clf = TitleClassifier("outputs/base/model")          # or backend="onnx" after `python -m jobtitles.export`
    clf.predict("VP of Sales")                            # ['Vice President']
    clf.predict(["CEO & Founder", "Sr. Engineer"])        # [['Chief Officer', 'Owner'], [...]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from jobtitles.core.baseline_store import load_baseline
from jobtitles.core.decision_rule import DecisionRule
from jobtitles.core.errors import UserError
from jobtitles.core.model_folder import ONNX_FILES, labels_of, load_checked_tokenizer, quiet_loading, read_model_config
from jobtitles.core.scoring import Scoring
from jobtitles.core.titles import clean_titles, is_blank
from jobtitles.core.tokenization import length_order


class TitleClassifier:
    def __init__(self, model: str | Path, backend: str = "torch", batch_size: int = 64, device: str | None = None,
                 threshold: float | None = None, max_length: int | None = None, threads: int | None = None,
                 dtype: str | None = None) -> None:
        if dtype not in (None, "float32", "bfloat16"):  # checked before anything is loaded
            raise UserError(f"dtype must be float32 or bfloat16 (torch backend), found {dtype!r}")
        self.model_dir = Path(model)
        self.threads = threads  # None: the libraries' default (every core); Spark passes its task's cores
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"batch_size must be a whole number of at least 1, found {batch_size!r}")
        cfg = read_model_config(self.model_dir)
        where = str(self.model_dir / "config.json")
        self.labels = labels_of(cfg, where)
        # the saved rule and scoring, every key checked: a model folder may come from someone else
        self.rule = DecisionRule.from_config(cfg, self.labels, where, threshold)
        self.scoring = Scoring.from_config(cfg, self.labels, where)
        self.batch_size = batch_size
        self.tokenizer = load_checked_tokenizer(self.model_dir, cfg)
        self._baseline = load_baseline(self.model_dir, len(self.labels)) if self.scoring.needs_baseline else None
        positions = int(cfg.get("max_position_embeddings") or 512)  # a title never needs more than 128 tokens
        # train.py saves the training max_length as the tokenizer's model_max_length, so it is the default
        # here as in pipeline(truncation=True); folders of other origin say 512 or more, and 128 is the default
        limit = self.tokenizer.model_max_length  # a hostile tokenizer_config.json may hold anything here
        limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 4 else positions
        self.max_length = min(max_length or 128, limit, positions)
        self.backend = backend
        self._forward = self._torch_forward(device, dtype) if backend == "torch" else self._onnx_forward(backend)
        self._check_scores()

    def _check_scores(self) -> None:
        """One title scored at load: a folder whose weights or export give NaN, infinite or mis-shaped scores is
        refused here rather than answering every request with them."""
        try:
            probe = self.predict_scores(["Vice President of Sales"])
        except (ValueError, IndexError, RuntimeError) as err:
            raise UserError(f"{self.model_dir}: the model does not score a title ({type(err).__name__}: "
                            f"{str(err)[:160]}); the folder is damaged: re-copy it or retrain") from err
        if probe.shape != (1, len(self.labels)) or not np.all(np.isfinite(probe)):
            raise UserError(f"{self.model_dir}: the {self.backend} model scores a title as {probe.tolist()!r:.120}, "
                            f"expected {len(self.labels)} finite scores; the folder is damaged: re-copy it or retrain")

    # --- backends -------------------------------------------------------------------------------------------
    def _torch_forward(self, device: str | None, dtype_name: str | None = None):
        import torch
        from transformers import AutoModelForSequenceClassification

        if self.threads:
            torch.set_num_threads(self.threads)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # default: bf16 on a GPU that has it; fp32 on CPU, where onnx-int8 is the fast backend (docs/benchmarks.md)
        if dtype_name is None:
            dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        else:
            dtype = getattr(torch, dtype_name)
        try:
            with quiet_loading():
                # safetensors only: a pickled checkpoint (pytorch_model.bin) could run code when loaded
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    str(self.model_dir), dtype=dtype, use_safetensors=True, trust_remote_code=False,
                    output_loading_info=True)
        except Exception as err:  # noqa: BLE001 - missing, truncated or garbage weights surface as many types
            raise UserError(f"{self.model_dir}: the model weights do not load ({type(err).__name__}: "
                            f"{(str(err).splitlines() or [''])[0][:200]}); the folder is damaged or incomplete "
                            "(model.safetensors is needed): re-copy it or retrain") from err
        gaps = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if gaps:  # transformers would fill a missing head with random weights and carry on
            kind, keys = next(iter(gaps.items()))
            raise UserError(f"{self.model_dir}: model.safetensors does not match config.json ({kind.replace('_', ' ')}: "
                            f"{list(keys)[:3]}); the folder mixes two models or is damaged: re-copy it or retrain")
        model = model.to(device).eval()
        self.torch_model = model  # the loaded transformers model (torch backend only)

        def forward(batch: dict) -> np.ndarray:
            with torch.inference_mode():
                inputs = {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
                return model(**inputs).logits.float().cpu().numpy()

        return forward

    def _onnx_forward(self, backend: str):
        if backend not in ONNX_FILES:
            raise UserError(f"backend must be torch, onnx or onnx-int8, found {backend!r}")
        path = self.model_dir / ONNX_FILES[backend]
        if not path.is_file():
            flag = " --int8" if backend == "onnx-int8" else ""
            raise UserError(f"{path} not found; export it first: python -m jobtitles.export --model {self.model_dir}{flag}")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = self.threads, 1
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own types for damaged or foreign files
            raise UserError(f"{path}: ONNX Runtime cannot load it ({type(err).__name__}: {str(err)[:160]}); export it "
                            f"again: python -m jobtitles.export --model {self.model_dir} --int8") from err
        names = {i.name for i in session.get_inputs()}

        def forward(batch: dict) -> np.ndarray:
            feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in names}
            return session.run(None, feeds)[0]

        return forward

    # --- the saved rule, as attributes ----------------------------------------------------------------------
    @property
    def thresholds(self) -> np.ndarray:
        return np.asarray(self.rule.thresholds, dtype=np.float64)

    @property
    def exclusive_label(self) -> str | None:
        return self.rule.exclusive_label

    # --- prediction -----------------------------------------------------------------------------------------
    def _batches(self, titles: Sequence[str], truncated: list[bool]) -> Iterator[tuple[np.ndarray, dict]]:
        enc = self.tokenizer(list(titles), truncation=True, max_length=self.max_length)
        for i, encoding in enumerate(enc.encodings or []):  # fast tokenizers keep what truncation cut off
            truncated[i] = truncated[i] or bool(encoding.overflowing)
        order = length_order([len(ids) for ids in enc["input_ids"]])
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            feats = [{k: enc[k][i] for k in keys} for i in idx]
            yield idx, self.tokenizer.pad(feats, return_tensors="np")

    def score_titles(self, titles: str | Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """Scores per label (rows in input order) and, per title, whether the models saw only a part of it
        (cut to MAX_TITLE_CHARS characters or to max_length tokens)."""
        titles = [titles] if isinstance(titles, str) else list(titles)
        scores = np.zeros((len(titles), len(self.labels)), dtype=np.float32)
        if not titles:
            return scores, []
        titles, truncated = clean_titles(titles)
        for idx, batch in self._batches(titles, truncated):
            scores[idx] = self.scoring.transformer_scores(self._forward(dict(batch)))
        if self._baseline is not None:  # labels the run's cross-fitted choice sent to the TF-IDF baseline
            base = self._baseline.predict_proba(np.asarray(titles, dtype=object))
            scores = self.scoring.combine(scores, base).astype(np.float32)
        return scores, truncated

    def predict_scores(self, titles: str | Sequence[str]) -> np.ndarray:
        """Sigmoid score per label, rows in input order."""
        return self.score_titles(titles)[0]

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return self.rule.decide(scores)

    def predict(self, titles: str | Sequence[str]) -> list[str] | list[list[str]]:
        """Label names per title (a list for one string, a list of lists for a list)."""
        single = isinstance(titles, str)
        titles = [titles] if single else list(titles)
        pred = self.decide(self.predict_scores(titles))
        pred[[is_blank(t) for t in titles]] = 0  # an empty title gets no labels, as on every path (titles.is_blank)
        out = [[self.labels[j] for j in np.flatnonzero(row)] for row in pred]
        return out[0] if single else out

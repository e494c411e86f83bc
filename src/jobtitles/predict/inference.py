"""Fast prediction from a saved model folder: length-sorted batches, per-batch padding, the saved decision rule.

    >>> from jobtitles import TitleClassifier
    >>> clf = TitleClassifier("outputs/base/model")  # or backend="onnx" after `python -m jobtitles.export`
    >>> p = clf("VP of Sales")                       # one title: a Prediction, labels and scores together
    >>> p.title, type(p.labels).__name__, sorted(p.scores) == sorted(clf.labels)
    ('VP of Sales', 'list', True)
    >>> [type(x).__name__ for x in clf(["CEO & Founder", "Sr. Engineer"])]  # a list: one per title, in order
    ['Prediction', 'Prediction']
    >>> clf.predict("VP of Sales") == p.labels       # the label names only
    True

`clf.predict_scores(titles)` gives the score matrix (a row per title, a column per label) and
`clf.predict_df(df, column="Title")` a copy of a pandas DataFrame with `labels` and `score:<label>` columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from jobtitles.core.baseline_store import load_baseline
from jobtitles.core.decision_rule import DecisionRule
from jobtitles.core.dedupe import Distinct, RecentTitles, compose, distinct_rows
from jobtitles.core.errors import UserError
from jobtitles.core.label_groups import LabelGroup
from jobtitles.core.model_folder import (ONNX_FILES, labels_of, load_checked_tokenizer, pipeline_gap_line, quiet_loading,
                                         read_model_config)
from jobtitles.core.scoring import Scoring
from jobtitles.core.titles import clean_titles, is_blank
from jobtitles.core.tokenization import length_order

if TYPE_CHECKING:
    import pandas

SCORE_PREFIX = "score:"  # predict_df's score columns, named as in predict.py's CSV and the page's download
PANDAS_HINT = 'pip install pandas (or the spark extra: pip install "jobtitles[spark]")'


@dataclass(frozen=True)
class Prediction:
    """One title's answer, with the field names of the HTTP API's results: `labels` (label order) by the saved
    rule, `scores` a score per label of the model, `truncated` when the model saw only a part of the title.

    >>> Prediction("CEO", ["Chief Officer"], {"Chief Officer": 0.93, "Owner": 0.12})
    Prediction(title='CEO', labels=['Chief Officer'], scores={'Chief Officer': 0.93, 'Owner': 0.12}, truncated=False)
    """

    title: str
    labels: list[str]
    scores: dict[str, float]
    truncated: bool = False


class TitleClassifier:
    """Labels job titles with a model folder that train.py wrote, by the rule saved in its config.json
    (per-label thresholds, at least one label, the empty label, label groups), as predict.py, the HTTP API and
    Spark apply it.

    Args:
        model: the model folder (outputs/<run>/model).
        backend: "torch", or "onnx" / "onnx-int8" after `python -m jobtitles.export --model <folder> --int8`.
        batch_size: titles per forward pass (titles are sorted by length and padded per batch).
        device: "cpu", "cuda", ... (default: a GPU where there is one).
        threshold: replaces every saved threshold (like predict.py --threshold).
        max_length: tokens read per title (default: the training max_length, at most 128).
        threads: CPU threads (default: the libraries' default, every core).
        dtype: "float32" or "bfloat16", torch backend only (default: bf16 on a GPU that has it, else fp32).
        cache: a dedupe.RecentTitles: titles scored before are answered from it (predict.py and serve use one).

    `clf(titles)` or `clf.classify(titles)`: Prediction objects; `predict`: label names; `predict_scores`: the
    score matrix; `predict_df`: a DataFrame. A blank title (titles.is_blank) gets no labels on every path.

    >>> clf = TitleClassifier("outputs/base/model", batch_size=32)
    >>> len(clf.thresholds) == len(clf.labels), clf.backend
    (True, 'torch')
    >>> clf.predict(["VP of Sales", "  "])[1]
    []
    """

    def __init__(self, model: str | Path, backend: str = "torch", batch_size: int = 64, device: str | None = None,
                 threshold: float | None = None, max_length: int | None = None, threads: int | None = None,
                 dtype: str | None = None, cache: RecentTitles | None = None) -> None:
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
        # labels scored outside the transformer or by a group softmax: what a plain transformers pipeline
        # answers differently (or None)
        self.pipeline_gap = pipeline_gap_line(cfg)
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
        self.last_counts = (0, 0)  # (rows, distinct model inputs scored) of the latest score_titles call
        self.cache = cache  # answers of recent titles (dedupe.RecentTitles); may be shared by several classifiers
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
        """The empty label ("none of the others"): never decided beside another label; None without one."""
        return self.rule.exclusive_label

    @property
    def at_least_one(self) -> bool:
        """A title with no score past its threshold gets its top label."""
        return self.rule.at_least_one

    @property
    def label_groups(self) -> tuple[LabelGroup, ...]:
        """The label groups decided one label per group (empty where the run did not adopt them)."""
        return self.rule.groups

    # --- prediction -----------------------------------------------------------------------------------------
    def _batches(self, enc, rows: np.ndarray) -> Iterator[tuple[np.ndarray, dict]]:
        """Padded batches of the encoded `rows`, shortest first; each with its positions in `rows`."""
        order = length_order([len(enc["input_ids"][i]) for i in rows])
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            feats = [{k: enc[k][rows[i]] for k in keys} for i in idx]
            yield idx, self.tokenizer.pad(feats, return_tensors="np")

    def model_feeds(self, titles: Sequence[str], names: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
        """The padded int64 batches the model is run on for `titles` (cleaned, cut to max_length, shortest
        first), with the inputs `names` only: what static int8 export calibrates its activation ranges on."""
        cleaned, _ = clean_titles(list(titles))
        enc = self.tokenizer(cleaned, truncation=True, max_length=self.max_length)
        for _, batch in self._batches(enc, np.arange(len(cleaned))):
            yield {k: np.asarray(batch[k], dtype=np.int64) for k in names}

    def distinct_inputs(self, titles: list[str]) -> tuple[Distinct, Distinct, object]:
        """Rows grouped twice: by the exact (cleaned) title, then those titles by what the models see: the
        token ids (the tokenizer's own normalisation, e.g. lower case for an uncased vocabulary, and its
        whitespace rules) and, where the TF-IDF baseline scores labels, the exact title too (the baseline reads
        the text itself). Returns (rows -> titles, titles -> model inputs, the titles' encodings)."""
        by_text = distinct_rows(titles)
        texts = [titles[i] for i in by_text.first]
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        keys: list = [tuple(ids) for ids in enc["input_ids"]]
        if self._baseline is not None:
            keys = list(zip(keys, texts))
        return by_text, distinct_rows(keys), enc

    def score_titles(self, titles: str | Sequence[str],
                     on_batch: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, list[bool]]:
        """Scores per label (rows in input order) and, per title, whether the models saw only a part of it
        (cut to MAX_TITLE_CHARS characters or to max_length tokens). Each distinct model input is scored once
        (distinct_inputs), and a title in the cache (`cache`) not at all; the answers are those of scoring every
        row. `on_batch(done, of)`: called after each model batch with the distinct inputs scored so far and
        their number (a progress display)."""
        titles = [titles] if isinstance(titles, str) else list(titles)
        if not titles:
            return np.zeros((0, len(self.labels)), dtype=np.float32), []
        titles, cut_chars = clean_titles(titles)
        self.last_counts = (len(titles), 0)
        by_text = distinct_rows(titles)  # the cache and the model see each distinct title of the call once
        texts = [titles[i] for i in by_text.first]
        found = self.cache.lookup(texts) if self.cache is not None else [None] * len(texts)
        todo = [j for j, f in enumerate(found) if f is None]
        scores = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        cut_tokens = np.zeros(len(texts), dtype=bool)
        if todo:
            new = [texts[j] for j in todo]
            scores[todo], cut_tokens[todo] = self._score_distinct(new, on_batch)
            if self.cache is not None:
                self.cache.store(new, scores[todo], cut_tokens[todo])
        for j, f in enumerate(found):
            if f is not None:
                scores[j], cut_tokens[j] = f
        cut = by_text.expand(cut_tokens).tolist()
        return by_text.expand(scores), [bool(a or b) for a, b in zip(cut_chars, cut)]

    def _transformer_scores(self, enc, by_input: Distinct, on_batch=None) -> np.ndarray:
        """The transformer's own scores of each distinct model input (`by_input.first` rows of `enc`)."""
        scores = np.zeros((by_input.n, len(self.labels)), dtype=np.float32)
        done = 0
        for idx, batch in self._batches(enc, by_input.first):
            scores[idx] = self.scoring.transformer_scores(self._forward(dict(batch)))
            done += len(idx)
            if on_batch is not None:
                on_batch(done, by_input.n)
        return scores

    def source_scores(self, titles: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Per title, the transformer's own scores and the TF-IDF baseline's (None where the folder has no
        baseline), before the saved scoring combines them: what `jobtitles suggest` compares."""
        titles, _ = clean_titles(list(titles))
        by_text, by_input, enc = self.distinct_inputs(titles)
        rows = compose(by_text, by_input)
        own = rows.expand(self._transformer_scores(enc, by_input))
        if self._baseline is None:
            return own, None
        return own, self._baseline.predict_proba(np.asarray(titles, dtype=object)).astype(np.float32)

    def _score_distinct(self, titles: list[str], on_batch) -> tuple[np.ndarray, np.ndarray]:
        """Scores of cleaned titles and whether max_length cut each, scoring each distinct model input once."""
        by_text, by_input, enc = self.distinct_inputs(titles)
        scores = self._transformer_scores(enc, by_input, on_batch)
        if self._baseline is not None:  # labels the run's cross-fitted choice sent to the TF-IDF baseline
            texts = [titles[i] for i in compose(by_text, by_input).first]
            base = self._baseline.predict_proba(np.asarray(texts, dtype=object))
            scores = self.scoring.combine(scores, base).astype(np.float32)
        # fast tokenizers keep what truncation cut off
        cut = np.array([bool(e.overflowing) for e in enc.encodings or []] or [False] * by_text.n)
        self.last_counts = (self.last_counts[0], by_input.n)
        return compose(by_text, by_input).expand(scores), by_text.expand(cut)

    def predict_scores(self, titles: str | Sequence[str]) -> np.ndarray:
        """Sigmoid score per label, rows in input order."""
        return self.score_titles(titles)[0]

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return self.rule.decide(scores)

    def _decided(self, titles: Sequence[object], scores: np.ndarray) -> list[list[str]]:
        pred = self.decide(scores)
        pred[[is_blank(t) for t in titles]] = 0  # an empty title gets no labels, as on every path (titles.is_blank)
        return [[self.labels[j] for j in np.flatnonzero(row)] for row in pred]

    def predict(self, titles: str | Sequence[str]) -> list[str] | list[list[str]]:
        """Label names per title (a list for one string, a list of lists for a list)."""
        single = isinstance(titles, str)
        titles = [titles] if single else list(titles)
        out = self._decided(titles, self.predict_scores(titles))
        return out[0] if single else out

    def classify(self, titles: str | Sequence[str]) -> Prediction | list[Prediction]:
        """Labels and scores per title: a Prediction for one string, a list of them (input order) for a list.
        A blank title gets no labels (its scores are still the model's, as predict_scores gives them).

        >>> preds = clf.classify(["VP of Sales", ""])
        >>> [type(p).__name__ for p in preds], preds[1].labels
        (['Prediction', 'Prediction'], [])
        >>> list(preds[0].scores) == clf.labels, all(0 <= s <= 1 for s in preds[0].scores.values())
        (True, True)
        """
        single = isinstance(titles, str)
        titles = [titles] if single else list(titles)
        scores, truncated = self.score_titles(titles)
        out = [Prediction(t, names, dict(zip(self.labels, map(float, row))), cut)
               for t, names, row, cut in zip(titles, self._decided(titles, scores), scores, truncated)]
        return out[0] if single else out

    def __call__(self, titles: str | Sequence[str]) -> Prediction | list[Prediction]:
        """`clf(titles)` is `clf.classify(titles)`: a string gives one Prediction, a list a list of them.

        >>> clf("CEO").labels == clf.predict("CEO")
        True
        """
        return self.classify(titles)

    def predict_df(self, df: "pandas.DataFrame", column: str = "Title") -> "pandas.DataFrame":
        """A new DataFrame: `df`'s columns, index and row order, then `labels` (a list of label names per row)
        and one `score:<label>` column per label, in label order (the column names of predict.py's CSV). `df`
        itself is not changed. A blank cell (None, NaN, not text, or nothing visible in it: titles.is_blank)
        gets labels [] and NaN scores. A column of `df` that has one of the added names is refused, not
        overwritten. Needs pandas (the spark extra).

        >>> import pandas as pd
        >>> df = pd.DataFrame({"Title": ["VP of Sales", None, "CEO"]}, index=[10, 20, 30])
        >>> out = clf.predict_df(df)
        >>> list(out.columns) == ["Title", "labels"] + ["score:" + lab for lab in clf.labels]
        True
        >>> out.index.tolist(), out.loc[20, "labels"], list(df.columns)
        ([10, 20, 30], [], ['Title'])
        """
        pd = _pandas()
        titles = _title_column(df, column, pd)
        added = ["labels", *(SCORE_PREFIX + lab for lab in self.labels)]
        clash = [c for c in added if c in df.columns]
        if clash:
            raise UserError(f"predict_df: the DataFrame already has column(s) {clash!r:.200}, which predict_df adds; "
                            "rename or drop them first (df.drop(columns=[...]))")
        keep = np.array([not is_blank(t) for t in titles], dtype=bool)
        scores = np.full((len(titles), len(self.labels)), np.nan, dtype=np.float32)
        labels: list[list[str]] = [[] for _ in titles]
        if keep.any():
            kept = [t for t, ok in zip(titles, keep) if ok]
            scores[keep] = self.predict_scores(kept)
            for i, names in zip(np.flatnonzero(keep), self._decided(kept, scores[keep])):
                labels[i] = names
        columns = {"labels": labels, **{name: scores[:, j] for j, name in enumerate(added[1:])}}
        # index=df.index: the new columns line up with df's rows as they are, repeated index values included
        return pd.concat([df, pd.DataFrame(columns, index=df.index)], axis=1)


def _pandas():
    try:
        import pandas as pd
    except ImportError as err:
        raise UserError(f"predict_df needs pandas, which is not installed: {PANDAS_HINT}") from err
    return pd


def _title_column(df: "pandas.DataFrame", column: str, pd) -> list[object]:
    """The title cells of `df[column]`, checked: a DataFrame that has the column once."""
    if not isinstance(df, pd.DataFrame):
        raise UserError(f"predict_df takes a pandas DataFrame, found {type(df).__name__}; for a list of titles "
                        "use clf(titles) or clf.predict(titles)")
    found = int((df.columns == column).sum())
    if found != 1:
        what = "not found" if not found else f"found {found} times"
        raise UserError(f"predict_df: column {column!r} {what}; the DataFrame has columns {list(df.columns)!r:.300}; "
                        "pass column=<the title column>")
    return df[column].tolist()

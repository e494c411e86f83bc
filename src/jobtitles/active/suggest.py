"""`jobtitles suggest`: the titles of a pool most worth labelling next, written as a CSV in the training schema
(label columns empty, to fill in and append to the training file) with the model's suggested labels, the reason
for each pick and how often the title occurs in the pool.

Steps: the pool's distinct model inputs with their counts -> minus the titles the model was trained on -> a
value per title (active.choose: uncertainty near the saved rule, transformer vs TF-IDF disagreement, frequency)
-> a diverse batch (clusters of the encoder's embeddings, no near-duplicate texts). Without a model (a cold
start) the value is the frequency alone and the embedded encoder gives the clusters.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from jobtitles.active import choose
from jobtitles.active.embed import embed, embedded_encoder
from jobtitles.active.pool import Pool, PoolReading, read_pool
from jobtitles.core.decision_rule import group_columns
from jobtitles.core.errors import UserError
from jobtitles.core.log import logger, warn
from jobtitles.core.spreadsheet import escape_cell

MAX_N = 10_000  # titles per batch: more than a person labels between two retrains


@dataclass(frozen=True)
class SuggestArgs:
    pool: Path
    n: int
    model: Path | None = None  # None: cold start
    train_files: tuple[Path, ...] = ()  # titles never suggested (default: the run folder's out-of-fold file)
    seed: int = 42
    backend: str = "auto"
    batch_size: int = 64
    near_duplicate: float = 0.9  # character n-gram cosine at which two texts count as the same title
    reading: PoolReading = PoolReading()


@dataclass(frozen=True)
class Suggestion:
    rank: int
    title: str
    pool_count: int
    suggested: tuple[str, ...]  # the model's labels for it (empty on a cold start)
    reason: str
    value: float


@dataclass(frozen=True)
class Candidates:
    """The pool's distinct model inputs that may be suggested: a representative text each (its most frequent
    spelling) and the pool rows that share it."""
    titles: list[str]
    counts: np.ndarray
    in_training: int  # distinct inputs skipped: already in the training data
    formula: int  # distinct titles skipped: a spreadsheet would run them as a formula
    delimited: int = 0  # distinct titles skipped: they hold the delimiter twice, which the training loader refuses


@dataclass(frozen=True)
class Scored:
    shipped: np.ndarray  # the model's scores as it decides (the saved scoring)
    own: np.ndarray  # the transformer's own
    baseline: np.ndarray | None  # the TF-IDF baseline's, where one is available


def check_args(args: SuggestArgs) -> None:
    if isinstance(args.n, bool) or not isinstance(args.n, int) or not 1 <= args.n <= MAX_N:
        raise UserError(f"--n must be a whole number from 1 to {MAX_N:,}, found {args.n!r}")
    if isinstance(args.seed, bool) or not isinstance(args.seed, int) or not 0 <= args.seed < 2**32:
        raise UserError(f"--seed must be a whole number from 0 to {2**32 - 1} (KMeans' range), found {args.seed!r}")
    if not 0 < args.near_duplicate <= 1:
        raise UserError(f"--near_duplicate must be in (0, 1] (a cosine similarity), found {args.near_duplicate}")
    if args.model is not None and not (args.model / "config.json").is_file():
        raise UserError(f"--model {args.model}: no config.json there; expected a model folder written by train.py "
                        "(outputs/<run>/model), or leave --model out for a cold start")
    for path in (args.pool, *args.train_files):
        if not path.is_file():
            raise UserError(f"{path}: file not found; check the path (--pool / --train_file)")


KEY_CHUNK = 2_000  # titles tokenized at once: a fast tokenizer's output for a million long titles is tens of GB


def model_keys(tokenizer, texts: Sequence[str], max_length: int) -> list[bytes]:
    """What the model sees of each text (its tokenizer's normalisation: case, spacing): the identity of a title,
    kept as a 16-byte digest of its token ids so that a million distinct titles stay small."""
    out: list[bytes] = []
    for start in range(0, len(texts), KEY_CHUNK):  # one expression: a chunk's ids are freed before the next's
        out += [hashlib.blake2b(np.asarray(ids, dtype=np.int64).tobytes(), digest_size=16).digest()
                for ids in tokenizer(list(texts[start:start + KEY_CHUNK]), truncation=True, max_length=max_length,
                                     return_attention_mask=False, return_token_type_ids=False)["input_ids"]]
    return out


def candidates(pool: Pool, tokenizer, max_length: int, training_titles: Sequence[str],
               delimiter: str = ";") -> Candidates:
    """Distinct model inputs of the pool, minus those of the training data, formula-like texts and texts that
    hold the output's `delimiter` twice; sorted by spelling, so that the pool's row order changes nothing."""
    texts = list(pool.counts)
    known = set(model_keys(tokenizer, training_titles, max_length)) if training_titles else set()
    spellings: dict[bytes, list[str]] = defaultdict(list)
    formula = delimited = 0
    for text, key in zip(texts, model_keys(tokenizer, texts, max_length)):
        if escape_cell(text) != text:  # "=HYPERLINK(...)" is no job title, and would run in a spreadsheet
            formula += 1
        elif text.count(delimiter) >= 2:  # the filled file would be refused by the loader (data.check_fields)
            delimited += 1
        else:
            spellings[key].append(text)
    kept = [v for k, v in spellings.items() if k not in known]
    # the most frequent spelling, candidates sorted by it: the same rows in any order give the same batch
    titles = [min(v, key=lambda t: (-pool.counts[t], t)) for v in kept]
    order = sorted(range(len(kept)), key=titles.__getitem__)
    counts = np.array([sum(pool.counts[t] for t in kept[i]) for i in order], dtype=np.int64)
    return Candidates([titles[i] for i in order], counts, len(spellings) - len(kept), formula, delimited)


def disagreement(rule, scored: Scored) -> np.ndarray | None:
    """1 where the transformer alone and the baseline alone, each decided by the saved rule, differ."""
    if scored.baseline is None:
        return None
    return np.any(rule.decide(scored.own) != rule.decide(scored.baseline), axis=1).astype(np.float64)


def group_cols(clf, schema) -> list[np.ndarray]:
    """The label groups the rule decodes, else the training file's column families."""
    if clf.label_groups:
        return [group_columns(g, clf.labels) for g in clf.label_groups]
    families: dict[int, list[int]] = defaultdict(list)
    for label, col in schema.column_of:
        families[col].append(clf.labels.index(label))
    return [np.array(v) for v in families.values() if len(v) > 1]


def pick(values: np.ndarray, embed_fn, titles: list[str], n: int, seed: int, near: float) -> list[int]:
    """Candidate positions of the batch, best first."""
    short = choose.shortlist(values, n, seed)
    short_titles = [titles[i] for i in short]
    chosen, forced = choose.diverse_batch(values[short], embed_fn(short_titles), choose.near_duplicates(short_titles),
                                          n, seed, near)
    if forced:
        warn(f"{forced} of the {len(chosen)} suggested titles are near-duplicates of others: the pool holds too few "
             "different titles for this --n")
    return [int(short[i]) for i in chosen]


def reason(i: int, cand: Candidates, clf, scored: Scored | None, unsure, disagree) -> str:
    count = int(cand.counts[i])
    freq = f"{count:,} time{'s' if count != 1 else ''} in the pool"
    if scored is None:
        return f"no model yet: {freq}, unlike the other picks"
    parts = []
    if unsure.threshold_part[i] >= unsure.group_part[i]:
        j = int(unsure.label[i])
        parts.append(f"{clf.labels[j]} {scored.shipped[i, j]:.2f}, threshold {clf.thresholds[j]:.2f}")
    else:
        a, b = (int(x) for x in unsure.group_pair[i])
        parts.append(f"{clf.labels[a]} {scored.shipped[i, a]:.2f} vs {clf.labels[b]} {scored.shipped[i, b]:.2f}")
    if disagree is not None and disagree[i]:
        base = [clf.labels[j] for j in np.flatnonzero(clf.decide(scored.baseline[i:i + 1])[0])]
        parts.append(f"the TF-IDF baseline says {', '.join(base) or 'no label'}")
    return " · ".join(parts + [freq])  # not the delimiter: the loader refuses a field that holds it twice


def report_pool(args: SuggestArgs, pool: Pool, cand: Candidates) -> None:
    """What the pool holds and what was left out of it; a pool that leaves nothing to choose is refused."""
    logger.info(f"pool {args.pool}: {pool.rows:,} rows, {len(pool.counts):,} distinct titles, "
                f"{len(cand.titles):,} to choose from ({cand.in_training:,} already in the training data)")
    if pool.labelled_rows:
        logger.info(f"pool: {pool.labelled_rows:,} rows already have labels and are not suggested")
    if cand.formula:
        warn(f"pool: {cand.formula:,} titles start with a formula sign (= + - @) and are never suggested: a "
             "spreadsheet would run them")
    if cand.delimited:
        warn(f"pool: {cand.delimited:,} titles hold the output's delimiter twice and are never suggested: the "
             "training loader refuses such a field (an unclosed quote, to it)")
    if not cand.titles:
        raise UserError(f"{args.pool}: nothing to suggest among {len(pool.counts):,} distinct titles: "
                        f"{cand.in_training:,} model inputs are in the training data, {cand.formula:,} start with a "
                        f"formula sign, {cand.delimited:,} hold the delimiter twice; expected new job titles")


def training_data(args: SuggestArgs, labels: Sequence[str] | None) -> tuple[list[str], np.ndarray | None]:
    """The titles never to suggest and, where their labels are the model's, a label matrix (to fit a TF-IDF
    baseline when the model folder has none). `--train_file` files, else the run folder's oof_predictions.csv
    (every training title with its gold labels), else, with a model, a refusal: skipping nothing would offer
    titles the model already learned."""
    from jobtitles.core.data import load_titles

    if args.train_files:
        titles: list[str] = []
        for path in args.train_files:
            r = args.reading
            titles += load_titles(path, text_column=r.text_column, label_prefix=r.label_prefix,
                                  delimiter=r.delimiter, encoding=r.encoding)[0]
        return titles, None
    if args.model is None:
        return [], None
    oof = args.model.parent / "oof_predictions.csv"
    if not oof.is_file():
        raise UserError(f"--model {args.model}: no oof_predictions.csv beside it ({oof}), so the titles it was "
                        "trained on are unknown; pass --train_file <the training CSV> (repeat for several files)")
    from jobtitles.core.labels import split_labels
    from jobtitles.core.spreadsheet import read_rows

    try:  # the reader export.py uses: the prediction side reads this one file of a run, not the run's code
        rows = [r for r in read_rows(oof, ("title", "gold")) if isinstance(r["title"], str) and r["title"]]
        titles = [r["title"] for r in rows]
        golds = [split_labels(r["gold"] or "") for r in rows]
    except (ValueError, KeyError, csv.Error) as err:  # UnicodeDecodeError is a ValueError
        raise UserError(f"{oof}: not an oof_predictions.csv this project wrote ({type(err).__name__}); pass "
                        "--train_file <the training CSV>") from err
    if not titles:  # an empty or truncated file would let every training title be suggested
        raise UserError(f"{oof}: no titles (expected a 'title' column with every training title); the run folder "
                        "is damaged: pass --train_file <the training CSV>")
    if labels is None or any(g not in labels for gs in golds for g in gs):
        return titles, None
    y = np.zeros((len(titles), len(labels)), dtype=np.float32)
    index = {lab: j for j, lab in enumerate(labels)}
    for i, gs in enumerate(golds):
        y[i, [index[g] for g in gs]] = 1
    return titles, y


def score(clf, titles: list[str], train: tuple[list[str], np.ndarray | None], seed: int) -> Scored:
    own, base = clf.source_scores(titles)
    shipped = clf.scoring.combine(own, base) if base is not None else own
    if base is None and train[1] is not None and len(train[0]) >= 2:
        from jobtitles.core.baseline import fit_baseline

        logger.info(f"suggest: fitting a TF-IDF baseline on the {len(train[0]):,} training titles (the model "
                    "folder has none), to compare it with the transformer")
        base = fit_baseline(train[0], train[1], seed).predict_proba(np.asarray(titles, dtype=object))
    return Scored(np.asarray(shipped, dtype=np.float64), np.asarray(own, dtype=np.float64),
                  None if base is None else np.asarray(base, dtype=np.float64))


def suggest(args: SuggestArgs) -> tuple[list[Suggestion], object]:
    """The batch (best first) and the training schema to write it in."""
    from jobtitles.core.model_folder import read_model_config
    from jobtitles.core.training_schema import TrainingSchema

    check_args(args)
    pool = read_pool(args.pool, args.reading)
    if args.model is None:
        return _cold(args, pool)
    from jobtitles.predict.backends import resolve_backend
    from jobtitles.predict.inference import TitleClassifier

    backend, _ = resolve_backend(args.model, args.backend)
    clf = TitleClassifier(args.model, backend=backend, batch_size=args.batch_size)
    schema = TrainingSchema.from_config(read_model_config(args.model), clf.labels, str(args.model / "config.json"))
    train = training_data(args, clf.labels)
    cand = candidates(pool, clf.tokenizer, clf.max_length, train[0], schema.delimiter)
    report_pool(args, pool, cand)
    scored = score(clf, cand.titles, train, args.seed)
    unsure = choose.uncertainty(scored.shipped, clf.thresholds, group_cols(clf, schema))
    disagree = disagreement(clf.rule, scored)
    values = choose.title_values(unsure.value, disagree, cand.counts)
    encoder = clf.torch_model.base_model if backend == "torch" else \
        TitleClassifier(args.model, backend="torch").torch_model.base_model
    chosen = pick(values, lambda t: embed(encoder, clf.tokenizer, t, clf.max_length, args.batch_size),
                  cand.titles, args.n, args.seed, args.near_duplicate)
    decided = clf.decide(scored.shipped[chosen])
    out = [Suggestion(r + 1, cand.titles[i], int(cand.counts[i]),
                      tuple(clf.labels[j] for j in np.flatnonzero(decided[r])),
                      reason(i, cand, clf, scored, unsure, disagree), float(values[i]))
           for r, i in enumerate(chosen)]
    return sorted(out, key=lambda s: s.rank), schema


def _cold(args: SuggestArgs, pool: Pool):
    from jobtitles.core.training_schema import TrainingSchema

    encoder, tokenizer = embedded_encoder()
    train = training_data(args, None)
    cand = candidates(pool, tokenizer, 128, train[0], args.reading.delimiter)
    report_pool(args, pool, cand)
    logger.info("suggest: no --model (cold start): frequent titles, spread over the embedded encoder's clusters")
    values = choose.title_values(None, None, cand.counts)
    chosen = pick(values, lambda t: embed(encoder, tokenizer, t, 128, args.batch_size), cand.titles, args.n,
                  args.seed, args.near_duplicate)
    out = [Suggestion(r + 1, cand.titles[i], int(cand.counts[i]), (), reason(i, cand, None, None, None, None),
                      float(values[i])) for r, i in enumerate(chosen)]
    r = args.reading
    return out, TrainingSchema(r.text_column, r.label_prefix, r.delimiter)

"""Title normalisation that a transformer does not learn from 1,000 rows: abbreviations (VP, SVP, Sr., Dir., Mgr,
CEO ...), German gender forms ("Referent/in", "(m/w/d)") and contract suffixes ("(Full-time)").

It lives in the tokenizer itself, as `Replace` steps after the tokenizer's own normaliser in tokenizer.json, so it
is applied identically by training, TitleClassifier (torch, ONNX, int8), predict.py, serve, Spark, the
de-duplication key (token ids) and a plain transformers `pipeline`: no prediction path has its own copy to
forget. The saved tokenizer is a `TokenizersBackend` (tokenizer_class in tokenizer_config.json), the class that
loads tokenizer.json as written; an architecture class such as BertTokenizer rebuilds its normaliser from its
own settings and would drop the rules on load. The TF-IDF baseline reads the title as given."""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from jobtitles.core.errors import UserError

NONE = "none"
ABBREVIATIONS = "abbreviations"
KINDS = (NONE, ABBREVIATIONS)
CONFIG_KEY = "title_normalization"  # in config.json: what the card and `jobtitles` report say


@dataclasses.dataclass(frozen=True)
class Rule:
    pattern: str  # Oniguruma (the tokenizers library's regex engine), case-insensitive
    replacement: str
    example: str  # a title it changes: the test suite checks that each rule does


# Order matters: the longer abbreviations first (SVP before VP). Only expansions with one reading in job titles:
# CSO (sales, security, strategy), CPO and CRO are left as written.
RULES: tuple[Rule, ...] = (
    Rule(r"\bsvp\b", "senior vice president", "SVP Marketing"),
    Rule(r"\bevp\b", "executive vice president", "EVP Operations"),
    Rule(r"\bavp\b", "assistant vice president", "AVP IT"),
    Rule(r"\bvp\b", "vice president", "VP Sales"),
    Rule(r"\b(?:sr|snr)\b\.?", "senior", "Sr. Director Channel Sales"),
    Rule(r"\bjr\b\.?", "junior", "Jr. Account Manager"),
    Rule(r"\bdir\b\.?", "director", "Dir. Marketing"),
    Rule(r"\b(?:mgr|mngr)\b\.?", "manager", "Mgr Operations"),
    Rule(r"\basst\b\.?", "assistant", "Asst. Controller"),
    Rule(r"\bassoc\b\.?", "associate", "Assoc. Director"),
    Rule(r"\bmktg\b\.?", "marketing", "Mktg Director"),
    Rule(r"\bintl\b\.?", "international", "Intl. Sales Manager"),
    Rule(r"\bdept\b\.?", "department", "Head of Sales Dept."),
    Rule(r"\bceo\b", "chief executive officer", "CEO & Founder"),
    Rule(r"\bcfo\b", "chief financial officer", "CFO"),
    Rule(r"\bcoo\b", "chief operating officer", "COO"),
    Rule(r"\bcto\b", "chief technology officer", "CTO"),
    Rule(r"\bcio\b", "chief information officer", "Head of Group IT / CIO"),
    Rule(r"\bcmo\b", "chief marketing officer", "CMO EMEA"),
    Rule(r"\bchro\b", "chief human resources officer", "CHRO"),
    # German gender forms: the feminine ending and the (m/w/d) notice say nothing about level or department
    Rule(r"(?<=\w)(?:/-?in|\(in\)|\*in|:in)(?![\w-])", "", "Referent/in Marketing"),
    Rule(r"\(\s*[mwfdx]\s*/\s*[mwfdx]\s*(?:/\s*[mwfdx]\s*)?\)", "", "Sales Manager (m/w/d)"),
    # contract and place-of-work notices in brackets
    Rule(r"\(\s*(?:full|part)[- ]?time\s*\)|\(\s*(?:remote|hybrid|vollzeit|teilzeit|befristet)\s*\)", "",
         "Account Executive (Full-time)"),
)


def check_kind(kind: str, where: str) -> str:
    if kind not in KINDS:
        raise UserError(f"{where}: title_normalization must be one of {', '.join(KINDS)}, found {kind!r}")
    return kind


def with_normalization(tokenizer: "PreTrainedTokenizerBase", kind: str) -> "PreTrainedTokenizerBase":
    """`tokenizer` with the rules of `kind` after its own normaliser (a new tokenizer; `none`: the same one)."""
    if check_kind(kind, "title_normalization") == NONE:
        return tokenizer
    from tokenizers import Regex, normalizers
    from transformers import TokenizersBackend

    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    steps = [backend.normalizer] if backend.normalizer is not None else []
    steps += [normalizers.Replace(Regex("(?i)" + r.pattern), r.replacement) for r in RULES]
    # a removal can leave two spaces or a space before the end: the pre-tokenizer splits on whitespace anyway
    backend.normalizer = normalizers.Sequence(steps)
    return TokenizersBackend(tokenizer_object=backend, model_max_length=tokenizer.model_max_length,
                             model_input_names=list(tokenizer.model_input_names),
                             padding_side=tokenizer.padding_side, truncation_side=tokenizer.truncation_side,
                             **tokenizer.special_tokens_map)


def normalized_text(tokenizer: "PreTrainedTokenizerBase", title: str) -> str:
    """What the tokenizer's normaliser makes of `title` (lower case for an uncased vocabulary, the rules)."""
    normalizer = tokenizer.backend_tokenizer.normalizer
    return normalizer.normalize_str(title) if normalizer is not None else title

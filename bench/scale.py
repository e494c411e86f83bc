"""Cost of a run at scale: a generator of labelled titles in the project's schema, and one train.py run on them
with its wall time per part (load, calibration, each fold's head, training and scoring, baseline, decisions, label
issues, final model, files) read back from cv_results.json.

    python bench/scale.py make --rows 100000 --out /tmp/scale_100k.csv
    python bench/scale.py run --train_file /tmp/scale_100k.csv --output_dir /tmp/runs/scale_100k --time_budget 30m

The generated set has the shape of the benchmark data (../shared/data): two exclusive label columns, a level in
`Column 1` (Junior, Senior, Lead, Director, Management) and a department in `Column 2` (11), drawn with that
data's label frequencies; English and German titles of 2-10 words (about 35 characters on average), each title
distinct. The labels follow the words, but quality is not the point here, only cost. `run` is the real command in
a child process (`python -m jobtitles train --config base ...`); it prints the wall time, the child's peak RSS,
the plan (with a budget), the parts table and whether the run folder is complete.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

# The benchmark data's label frequencies (7,312 rows), per column.
LEVELS = {"Senior": 2991, "Lead": 2852, "Director": 781, "Management": 351, "Junior": 337}
DEPARTMENTS = {"Marketing": 2876, "Sales": 2623, "Information Technology": 871, "Business Development": 493,
               "Consulting": 146, "Project Management": 136, "Administrative": 72, "Other": 39,
               "Human Resources": 22, "Customer Support": 17, "Purchasing": 17}
LEVEL_WORDS = {
    "Junior": ["Junior", "Jr.", "Trainee", "Assistant", "Werkstudent", "Praktikant", "Associate", "Entry Level"],
    "Senior": ["Senior", "Sr.", "Experienced", "Referent", "Specialist", "Expert", "Sachbearbeiter", ""],
    "Lead": ["Lead", "Team Lead", "Teamleiter", "Head of", "Leiter", "Manager", "Principal", "Gruppenleiter"],
    "Director": ["Director", "Direktor", "Senior Director", "VP", "Vice President", "Bereichsleiter", "Dir.",
                 "Global Head of"],
    "Management": ["CEO", "Geschäftsführer", "Managing Director", "Chief", "Vorstand", "Owner", "Inhaber",
                   "General Manager"],
}
DEPARTMENT_WORDS = {
    "Marketing": ["Marketing", "Digital Marketing", "Brand", "Kommunikation", "Content", "Performance Marketing",
                  "Online Marketing", "Product Marketing"],
    "Sales": ["Sales", "Vertrieb", "Key Account", "Account", "Verkauf", "Inside Sales", "Field Sales",
              "Channel Sales"],
    "Information Technology": ["IT", "Software", "Infrastructure", "Cloud", "Data", "DevOps", "SAP", "Security"],
    "Business Development": ["Business Development", "Partnerships", "Growth", "Geschäftsentwicklung",
                             "New Business", "Alliances", "Strategy", "Expansion"],
    "Consulting": ["Consulting", "Beratung", "Advisory", "Solutions", "Consultant", "Transformation",
                   "Management Consulting", "Berater"],
    "Project Management": ["Project", "Projekt", "PMO", "Program", "Delivery", "Projektmanagement", "Scrum",
                           "Portfolio"],
    "Administrative": ["Office", "Administration", "Sekretariat", "Assistenz", "Backoffice", "Empfang",
                       "Verwaltung", "Facility"],
    "Other": ["Operations", "Logistics", "Production", "Quality", "Legal", "Finance", "Controlling", "Research"],
    "Human Resources": ["HR", "Human Resources", "Personal", "Recruiting", "Talent Acquisition", "People",
                        "Payroll", "Personalwesen"],
    "Customer Support": ["Customer Support", "Kundenservice", "Service Desk", "Helpdesk", "Customer Care",
                         "Support", "Customer Success", "Kundenbetreuung"],
    "Purchasing": ["Purchasing", "Einkauf", "Procurement", "Beschaffung", "Sourcing", "Buyer", "Supply Chain",
                   "Category"],
}
ROLES = ["Manager", "Specialist", "Coordinator", "Analyst", "Officer", "Referent", "Consultant", "Engineer",
         "Representative", "Partner", "Executive", "Associate"]
QUALIFIERS = ["DACH", "EMEA", "Germany", "Austria", "Switzerland", "Europe", "Global", "North", "South", "B2B",
              "B2C", "Retail", "Automotive", "Healthcare", "Enterprise", "SMB", "Digital", "International",
              "Central Europe", "Nordics", "Benelux", "UK", "France", "Online", "E-Commerce"]
SUFFIXES = ["", "", "", "", " (m/w/d)", " (w/m/d)", "/in", " - Remote", " (Teilzeit)", " | Hybrid"]
SEPARATORS = [" ", " - ", ", ", " | ", " / "]


def _draw(rng: random.Random, freq: dict[str, int]) -> str:
    return rng.choices(list(freq), weights=list(freq.values()))[0]


def one_title(rng: random.Random, level: str, department: str) -> str:
    words = [rng.choice(LEVEL_WORDS[level]), rng.choice(DEPARTMENT_WORDS[department])]
    if rng.random() < 0.6:
        words.append(rng.choice(ROLES))
    title = " ".join(w for w in words if w)
    if rng.random() < 0.5:
        title += rng.choice(SEPARATORS) + rng.choice(QUALIFIERS)
    if rng.random() < 0.15:
        title += " " + rng.choice(DEPARTMENT_WORDS[department])
    title += rng.choice(SUFFIXES)
    r = rng.random()
    return title.lower() if r < 0.05 else title.upper() if r < 0.08 else title


def generate(rows: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """`rows` distinct (title, level, department) rows; distinct by case-folded title."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    tries = 0
    while len(out) < rows:
        tries += 1
        if tries > rows * 50:
            raise SystemExit(f"scale: could not make {rows:,} distinct titles (made {len(out):,}); ask for fewer")
        level, department = _draw(rng, LEVELS), _draw(rng, DEPARTMENTS)
        title = one_title(rng, level, department)
        if title.casefold() not in seen:
            seen.add(title.casefold())
            out.append((title, level, department))
    return out


def make(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"scale: {out} exists; name a new file")
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\n")
        writer.writerow(["Title", "Column 1", "Column 2", "Column 3", "Column 4"])
        for title, level, department in generate(args.rows, args.seed):
            writer.writerow([title, level, department, "", ""])
    tmp.replace(out)
    print(f"wrote {args.rows:,} rows to {out}")


def run(args: argparse.Namespace) -> None:
    out = Path(args.output_dir)
    cmd = [sys.executable, "-m", "jobtitles", "train", "--config", "base", "--train_file", args.train_file,
           "--output_dir", str(out), "--progress", "log"]
    if args.time_budget:
        cmd += ["--time_budget", args.time_budget]
    out.parent.mkdir(parents=True, exist_ok=True)  # the log goes beside the run folder
    start = time.perf_counter()
    with open(f"{out}.log", "w", encoding="utf-8") as log:
        code = subprocess.call(cmd + args.extra, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"command: {' '.join(cmd + args.extra)}\nexit {code}; wall {wall:.0f} s ({wall / 60:.1f} min); "
          f"peak RSS {peak:,.0f} MiB; log {out}.log")
    report(out, wall)


def report(out: Path, wall: float) -> None:
    need = ["cv_results.json", "report.md", "oof_predictions.csv", "model/config.json", "model/README.md"]
    missing = [n for n in need if not (out / n).exists()]
    print("run folder complete" if not missing else f"run folder INCOMPLETE: missing {', '.join(missing)}")
    if "cv_results.json" in missing:
        return
    res = json.loads((out / "cv_results.json").read_text(encoding="utf-8"))
    plan = res.get("plan")
    if plan:
        print(f"plan: {plan['n_splits']} folds on {plan['cv_rows']:,} of {plan['n_rows']:,} rows, "
              f"{plan['fold_steps']} steps per fold model, {plan['final_steps']} final, expected "
              f"{plan['expected_seconds']:.0f} s of a {plan['budget_seconds']:.0f} s budget")
        for reason in plan["reasons"]:
            print(f"  - {reason}")
    parts = res["timing"].get("parts") or {}
    total = res["timing"].get("total_seconds") or wall
    print(f"{'part':<24}{'seconds':>10}{'share':>8}")
    for name, sec in parts.items():
        print(f"{name:<24}{sec:>10.1f}{sec / total:>8.1%}")
    train = sum(v for k, v in parts.items() if k.endswith("_train"))
    print(f"training the transformer {train:.0f} s = {train / total:.1%} of {total:.0f} s; the rest "
          f"{1 - train / total:.1%}")
    shipped = res["decision_rule"]["variant"]
    for name in (shipped, "baseline"):
        t = res["summary"].get(name)
        if t:
            print(f"CV {name}: " + ", ".join(f"{m} {t[m]['mean']:.4f} ± {t[m]['std']:.4f}" for m in
                                             ("micro_f1", "subset_accuracy", "macro_f1")))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    m = sub.add_parser("make", help="write a generated training CSV")
    m.add_argument("--rows", type=int, default=100_000)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    r = sub.add_parser("run", help="train on a CSV and print the wall time per part")
    r.add_argument("--train_file", required=True)
    r.add_argument("--output_dir", required=True)
    r.add_argument("--time_budget", default="")
    r.add_argument("extra", nargs="*", help="more train.py flags, after --")
    s = sub.add_parser("report", help="print the parts table of a finished run folder")
    s.add_argument("--output_dir", required=True)
    args = p.parse_args()
    if args.verb == "make":
        make(args)
    elif args.verb == "run":
        run(args)
    else:
        report(Path(args.output_dir), 0.0)


if __name__ == "__main__":
    main()

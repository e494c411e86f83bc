"""Generate data/job_titles.csv: the project's own synthetic sample in the user's schema.

Label set and proportions follow the classic job-level data described in shared/DESIGN.md (about 2,240 titles:
Individual Contributor/Staff 1105, Director 497, Vice President 403, Manager 211, Chief Officer 166, Owner 4,
10 rows without a label; 121 two-label rows, 1 three-label row, 11 four-label rows). Titles are composed from
role, department, abbreviation, separator, region and casing variants so that they look like real CRM exports.
Deterministic: `python data/make_sample.py` rewrites the same file (seed below).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20261126
OUT = Path(__file__).with_name("job_titles.csv")

IC, DIR, VP, MGR, CHIEF, OWNER = (
    "Individual Contributor/Staff", "Director", "Vice President", "Manager", "Chief Officer", "Owner",
)

DEPTS = [
    "Sales", "Marketing", "Engineering", "Finance", "Human Resources", "HR", "IT", "Information Technology",
    "Operations", "Product", "Product Management", "Customer Success", "Legal", "Procurement", "Supply Chain",
    "Data Science", "Business Development", "Information Security", "Facilities", "R&D", "Accounting",
    "Corporate Communications", "Talent Acquisition", "Software Development", "Infrastructure", "Analytics",
    "Strategy", "Partnerships", "Channel Sales", "Demand Generation", "Customer Support", "Quality Assurance",
    "Manufacturing", "Logistics", "Compliance", "Treasury", "Investor Relations", "Cloud Services", "Platform",
    "Digital Marketing", "Revenue Operations", "Field Marketing", "Inside Sales", "Enterprise Sales", "Payroll",
    "Clinical Operations", "Research", "Design", "Public Relations", "Risk Management",
]
REGIONS = ["EMEA", "North America", "APAC", "LATAM", "DACH", "Americas", "Global", "US West", "Northeast",
           "UK & Ireland", "Nordics", "Benelux", "Central Europe", "Asia Pacific", "Southeast"]
IC_ROLES = [
    "Software Engineer", "Account Executive", "Analyst", "Accountant", "Recruiter", "Specialist", "Consultant",
    "Coordinator", "Associate", "Developer", "Designer", "Administrator", "Representative", "Sales Rep",
    "Data Scientist", "Technician", "Assistant", "Buyer", "Solutions Architect", "Engineer", "Data Engineer",
    "Business Analyst", "Systems Administrator", "Network Engineer", "DevOps Engineer", "QA Engineer",
    "Product Designer", "Copywriter", "Paralegal", "Attorney", "Controller", "Auditor", "Planner", "Scientist",
    "Researcher", "Sales Development Rep", "SDR", "BDR", "Account Executive", "Customer Success Rep",
    "Support Engineer", "Field Engineer", "Web Developer", "Frontend Developer", "Backend Engineer",
    "Machine Learning Engineer", "Security Analyst", "Financial Analyst", "Marketing Specialist", "Intern",
    "Executive Assistant", "Office Administrator", "Receptionist", "Bookkeeper", "Payroll Specialist",
    "HR Generalist", "Talent Partner", "Sourcer", "Content Writer", "Graphic Designer", "Tester",
]
IC_LEVELS = ["", "", "", "Senior", "Sr.", "Sr", "Junior", "Jr.", "Lead", "Principal", "Staff", "Associate", "II", "III"]
CHIEF_WORDS = {
    "CEO": "Executive", "CFO": "Financial", "CTO": "Technology", "CIO": "Information", "CMO": "Marketing",
    "COO": "Operating", "CISO": "Information Security", "CRO": "Revenue", "CHRO": "Human Resources",
    "CPO": "Product", "CDO": "Data", "CCO": "Commercial", "CSO": "Strategy", "CLO": "Legal",
}


def case(rng: random.Random, text: str) -> str:
    r = rng.random()
    return text.upper() if r < 0.05 else text.lower() if r < 0.13 else text


def region(rng: random.Random, text: str) -> str:
    if rng.random() < 0.25:
        sep = rng.choice([", ", " - ", " | ", " ("])
        return f"{text}{sep}{rng.choice(REGIONS)}{')' if sep == ' (' else ''}"
    return text


def ic(rng: random.Random) -> str:
    level = rng.choice(IC_LEVELS)
    role = rng.choice(IC_ROLES)
    title = f"{level} {role}".strip() if level not in ("II", "III") else f"{role} {level}"
    if rng.random() < 0.3:
        title = f"{title}{rng.choice([', ', ' - ', ' / ', ' in '])}{rng.choice(DEPTS)}"
    return title


def director(rng: random.Random) -> str:
    d = rng.choice(DEPTS)
    return rng.choice([
        f"Director of {d}", f"{d} Director", f"Dir. {d}", f"Director, {d}", f"Senior Director, {d}",
        f"Sr. Director {d}", f"Director - {d}", f"Head of {d}", f"Associate Director, {d}", f"Group Director {d}",
        f"Dir of {d}", f"Executive Director, {d}", f"Regional Director {d}", f"Director {d} & {rng.choice(DEPTS)}",
    ])


def vp(rng: random.Random) -> str:
    d = rng.choice(DEPTS)
    return rng.choice([
        f"VP {d}", f"VP of {d}", f"Vice President of {d}", f"Vice President, {d}", f"SVP, {d}", f"SVP {d}",
        f"EVP {d}", f"Senior Vice President - {d}", f"V.P. {d}", f"AVP {d}", f"Assistant Vice President, {d}",
        f"Executive Vice President {d}", f"Regional VP {d}", f"VP, {d} & {rng.choice(DEPTS)}", f"Group VP {d}",
    ])


def manager(rng: random.Random) -> str:
    d = rng.choice(DEPTS)
    return rng.choice([
        f"{d} Manager", f"Manager, {d}", f"Mgr, {d}", f"Manager of {d}", f"Sr. Manager {d}", f"Senior Manager, {d}",
        f"{d} Mgr", f"Program Manager, {d}", f"Project Manager - {d}", f"Team Manager {d}", f"Manager {d}",
        f"Engineering Manager", f"Office Manager", f"Store Manager", f"General Manager", f"Regional Manager, {d}",
    ])


def chief(rng: random.Random) -> str:
    abbr, word = rng.choice(list(CHIEF_WORDS.items()))
    return rng.choice([
        abbr, f"Chief {word} Officer", f"{abbr}, {rng.choice(['Group', 'Company', 'Inc.'])}", f"Group {abbr}",
        f"Interim {abbr}", f"Deputy {abbr}", f"chief {word.lower()} officer", f"{abbr} / Chief {word} Officer",
        f"Global {abbr}", f"{'.'.join(abbr)}.", f"President & {abbr}" if abbr == "CEO" else f"Acting {abbr}",
    ])


def owner(rng: random.Random) -> str:
    return rng.choice(["Owner", "Business Owner", "Co-Owner", "Owner/Operator", "Franchise Owner"])


SINGLE = {IC: (ic, 1087), DIR: (director, 428), VP: (vp, 336), MGR: (manager, 127), CHIEF: (chief, 117),
          OWNER: (owner, 2)}
# (labels, count, maker): multi-label rows, counts fixed so label totals match the classic data.
MULTI = [
    ((DIR, MGR), 30, lambda r: f"{director(r)} {r.choice(['/', '&', 'and', ','])} {manager(r)}"),
    ((VP, MGR), 25, lambda r: f"{vp(r)} {r.choice(['&', 'and', '/'])} General Manager"),
    ((CHIEF, VP), 20, lambda r: f"{chief(r)} {r.choice(['&', '/', ','])} {vp(r)}"),
    ((CHIEF, DIR), 16, lambda r: f"{chief(r)} {r.choice(['&', 'and', '/'])} {director(r)}"),
    ((IC, MGR), 18, lambda r: f"{ic(r)} {r.choice(['/', '&', 'and'])} {manager(r)}"),
    ((DIR, VP), 11, lambda r: f"{vp(r)} {r.choice(['&', '/'])} {director(r)}"),
    ((OWNER, CHIEF), 1, lambda r: "Owner & CEO"),
    ((CHIEF, VP, DIR), 1, lambda r: "President, VP Sales & Director of Operations"),
    ((CHIEF, VP, DIR, MGR), 10, lambda r: f"{chief(r)}, {vp(r)}, {director(r)} & {manager(r)}"),
    ((OWNER, CHIEF, DIR, MGR), 1, lambda r: "Owner, CEO, Managing Director and General Manager"),
]
NO_LABEL = ["Board Member", "Volunteer", "Retired", "Student", "Advisor", "Board Advisor", "Investor",
            "Self-employed", "Member", "Trustee"]


def generate(seed: int = SEED) -> list[tuple[str, tuple[str, ...]]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, tuple[str, ...]]] = []

    def add(maker, labels: tuple[str, ...], count: int) -> None:
        made = tries = 0
        while made < count:
            title = case(rng, region(rng, maker(rng)))
            tries += 1
            if title.casefold() in seen and tries < count * 200:
                continue
            seen.add(title.casefold())
            rows.append((title, labels))
            made += 1

    for label, (maker, count) in SINGLE.items():
        add(maker, (label,), count)
    for labels, count, maker in MULTI:
        add(maker, labels, count)
    for title in NO_LABEL:
        rows.append((title, ()))
    rng.shuffle(rows)
    return rows


def main() -> None:
    rows = generate()
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\n")
        writer.writerow(["Title", "Column 1", "Column 2", "Column 3", "Column 4"])
        for title, labels in rows:
            writer.writerow([title, *labels, *[""] * (4 - len(labels))])
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()

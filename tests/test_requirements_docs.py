"""Every requirement ID the code cites (R1–R29) is stated in docs/requirements.md; no issue numbers in code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "requirements.md").read_text(encoding="utf-8")
SOURCES = [p for p in (ROOT / "portal").rglob("*") if p.suffix in {".py", ".html", ".js"}]
SOURCES += list((ROOT / "migrations").rglob("*.py"))


def test_every_cited_requirement_has_its_row():
    cited = {m for p in SOURCES for m in re.findall(r"\bR([1-9][0-9]?)\b", p.read_text(encoding="utf-8"))}
    assert cited, "the code cites requirements"
    missing = sorted((f"R{n}" for n in cited if f"| R{n} |" not in DOC), key=lambda r: int(r[1:]))
    assert missing == []


def test_no_comment_points_at_an_issue_number():
    found = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in SOURCES
             for line in p.read_text(encoding="utf-8").splitlines() if re.search(r"\bissue\s*#?\d", line, re.I)]
    assert found == []

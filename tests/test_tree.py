"""The tree's house rules, checked on what git tracks (fast, no Ray):

- every file under benchmarks/results/ and docs/results/logs/ is cited by a tracked doc
  (README.md, docs/**/*.md), by one of three forms:
    1. its path, or a tail of it no other such file shares (`concl/checker.json`);
    2. its file name (or a glob of it, `round*_stats.json`) in one paragraph with its folder
       (`benchmarks/results/vimar/speed`, `svp_shapes_seed1/`);
    3. a folder below the top level that holds it, as a folder (`genrm/bench_v1/`,
       `benchmarks/results/genrm/runs/<run name>/`): the top-level folders (`genrm/`,
       `vimar/`) hold many studies, so naming one cites none of its files;
- no tracked file under logs/ (ignored; the logs a page cites live in docs/results/logs/);
- README.md at most 250 lines;
- no work-tracking wording (numbered work items, sessions) and no first person in tracked docs;
- no `sys.path` edits in tracked Python files (tests/ and benchmarks/ import as packages).
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CITED_TREES = ("benchmarks/results", "docs/results/logs")
# spelled from parts so this file does not match itself
_ITEM, _SESSION = "iss" + "ue", "st" + "op"
WORDING = re.compile(rf"\b{_SESSION} [0-9]+|this {_SESSION}|previous {_SESSION}|{_ITEM} [0-9]", re.IGNORECASE)
FIRST_PERSON = re.compile(r"\b(?:[Ww]e|[Oo]urs?|[Uu]s|[Mm]e|[Mm]y|I(?!/O))\b|\b(?:[Ll]et's|[Ww]e've|[Ww]e're|I'm|I've)")


def tracked(*paths: str) -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *paths], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.stdout.decode().split("\0") if p and (ROOT / p).exists()]


def docs() -> dict[str, str]:
    return {p: (ROOT / p).read_text() for p in tracked("README.md", "docs") if p.endswith(".md")}


def tails(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[-k:]) for k in range(1, len(parts) + 1)]


def named(text: str, s: str, alone: bool = False) -> bool:
    """`s` in `text` as a whole path or path tail; `alone`: not the end of a longer path."""
    before = r"(?<![\w./-])" if alone else r"(?<![\w.-])"
    return re.search(before + re.escape(s) + r"(?![\w-])", text) is not None


def folder_named(text: str, root: str, folder: str, unique: Counter[str], as_folder: bool) -> bool:
    """`folder` (relative to `root`) spelled out: `root/folder`, or a tail of it no other folder
    shares; with `as_folder`, only where it is written as a folder (a trailing `/` and no file
    name after it, `<placeholders>` allowed)."""
    after = r"/(?![\w.*-])" if as_folder else r"(?:/|(?![\w.-]))"
    for s in [f"{root}/{folder}"] + [t for t in tails(folder) if unique[t] == 1]:
        if re.search(r"(?<![\w.-])" + re.escape(s) + after, text):
            return True
    return False


def uncited(files: list[str], root: str, texts: dict[str, str]) -> list[str]:
    rel = [f[len(root) + 1 :] for f in files]
    file_tails = Counter(t for r in rel for t in tails(r))
    folders = {r.rsplit("/", 1)[0] for r in rel if "/" in r}
    folders |= {"/".join(r.split("/")[:j]) for r in rel for j in range(1, r.count("/"))}
    folder_tails = Counter(t for d in folders for t in tails(d))
    whole = "\n\n".join(texts.values())
    paragraphs = [p for t in texts.values() for p in re.split(r"\n\s*\n", t)]
    templated = re.sub(r"<[^>/]+>/", "", whole)  # `runs/<run name>/` names `runs/` as a folder
    globs = {g for p in paragraphs for g in re.findall(r"`([\w.*-]*\*[\w.*-]*)`", p)}
    missing = []
    for r in rel:
        folder, _, name = r.rpartition("/")
        if any(file_tails[t] == 1 and named(whole, t) for t in tails(r)):
            continue
        if folder and any(
            (named(p, name, alone=True) or any(g in p and fnmatch.fnmatch(name, g) for g in globs))
            and folder_named(p, root, folder, folder_tails, as_folder=False)
            for p in paragraphs
        ):
            continue
        parts = r.split("/")
        if any(
            folder_named(templated, root, "/".join(parts[:j]), folder_tails, as_folder=True)
            for j in range(2, len(parts))
        ):
            continue
        missing.append(f"{root}/{r}")
    return missing


@pytest.mark.parametrize("root", CITED_TREES)
def test_every_results_file_is_cited_by_a_doc(root):
    files = tracked(root)
    assert files, f"nothing tracked under {root}/"
    missing = uncited(files, root, docs())
    assert not missing, f"cited by no tracked doc (README.md, docs/): {missing}"


def test_citation_forms(tmp_path):
    files = ["r/a.json", "r/g/x/report.json", "r/g/y/report.json", "r/g/y/log.txt", "r/g/s/t/u.json", "r/g/z.json"]
    texts = {
        "d.md": "Quoted: `a.json`, `x/report.json`.\n\nThe run `r/g/y` (with `log.txt`).\n\nUnder `g/s/`.",
    }
    assert uncited(files, "r", texts) == ["r/g/y/report.json", "r/g/z.json"]
    texts["e.md"] = "`r/g/y/report.json`; the top folder `r/g/` cites nothing."
    assert uncited(files, "r", texts) == ["r/g/z.json"]


def test_no_tracked_logs():
    assert tracked("logs") == []


def test_readme_at_most_250_lines():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= 250, f"README.md has {n} lines"


def test_docs_have_no_process_wording_or_first_person():
    bad = []
    for path in tracked("*.md"):
        for i, line in enumerate((ROOT / path).read_text().splitlines(), 1):
            if WORDING.search(line) or FIRST_PERSON.search(line):
                bad.append(f"{path}:{i}: {line.strip()[:120]}")
    assert not bad, "\n".join(bad)


def test_no_sys_path_edits_in_python():
    edit = re.compile(r"\bsys\.path\.(?:insert|append)\(")
    bad = [p for p in tracked("*.py") if edit.search((ROOT / p).read_text())]
    assert not bad, f"sys.path edited in {bad}"

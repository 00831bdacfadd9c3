"""Paths a command is told to write to or read from that it cannot use: ``--output``, ``--out``, ``DIR``.

Each is refused before anything is read or written. The process runs as
root in CI, where a read-only directory is writable: the cases use what
fails for root too (a path under a regular file, a directory where a file
must go, /proc), and tests/test_hostile_paths.py checks ``os.access``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hostile_catalogue import Case
from hostile_catalogue.common import DEMO, DEPTH_DEMO

REFERENCE = "reference"          # the authors' results shipped with alignfreeze
TATOEBA = "bundled:parallel/tatoeba/tatoeba.fra-eng"
ALIGN = ["align", "--aligner", "dico", "--language", "fr", "--source", f"{TATOEBA}.eng.first500",
         "--target", f"{TATOEBA}.fra.first500", "--dictionary", "bundled:dictionaries/muse/en-fr.first3000.txt"]


def built(files: dict[str, str | bytes | None], *args: str) -> Callable[[Path], list[str]]:
    """Write ``files`` (relative path -> text, bytes, or None: a directory) under the case's
    directory; the arguments, with ``{dir}`` replaced by it."""
    def argv(directory: Path) -> list[str]:
        for name, content in files.items():
            path = directory / name
            if content is None:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return [arg.replace("{dir}", str(directory)) for arg in args]
    return argv


A_FILE = {"taken": "not a directory\n"}
GRID_MANIFEST = '{"name": "demo", "identity": 2, "trials": []}'
SEARCH_MANIFEST = '{"name": "demo", "identity": 2, "search": {"trials": 2}, "trials": []}'

CASES = [
    # ---- run / search --output
    Case("run --output is a file", built(A_FILE, "run", str(DEMO), "--output", "{dir}/taken"),
         "taken: is a file, not a results directory"),
    Case("run --output under a file", built(A_FILE, "run", str(DEMO), "--output", "{dir}/taken/run"),
         "taken is a file, not a directory"),
    Case("run --output deep under a file", built(A_FILE, "run", str(DEMO), "--output", "{dir}/taken/a/b/c"),
         "taken is a file, not a directory"),
    Case("run --output whose results/ is a file",
         built({"out/experiment.json": GRID_MANIFEST, "out/results": "x"}, "run", str(DEMO), "--output", "{dir}/out"),
         "is a file where the results directory keeps its results/ folder"),
    Case("run --output whose ray/ is a file",
         built({"out/ray": "x"}, "run", str(DEMO), "--output", "{dir}/out"),
         "is a file where the results directory keeps its ray/ folder"),
    Case("run --output whose experiment.json is a directory",
         built({"out/experiment.json": None}, "run", str(DEMO), "--output", "{dir}/out"),
         "cannot read the manifest (Is a directory)"),
    Case("run --output holding a depth search",
         built({"out/experiment.json": SEARCH_MANIFEST}, "run", str(DEMO), "--output", "{dir}/out"),
         "holds a depth search (alignfreeze search): use another --output"),
    Case("run --dry-run --output under a file",
         built(A_FILE, "run", str(DEMO), "--output", "{dir}/taken/run", "--dry-run"),
         "taken is a file, not a directory"),
    Case("demo --output is a file", built(A_FILE, "demo", "--output", "{dir}/taken"),
         "taken: is a file, not a results directory"),
    Case("search --output is a file", built(A_FILE, "search", str(DEPTH_DEMO), "--output", "{dir}/taken"),
         "taken: is a file, not a results directory"),
    Case("search --output holding a grid",
         built({"out/experiment.json": GRID_MANIFEST}, "search", str(DEPTH_DEMO), "--output", "{dir}/out"),
         "holds a grid (alignfreeze run): use another --output"),
    # ---- --out of analyze, import-reference, align
    Case("import-reference --out under a file", built(A_FILE, "import-reference", REFERENCE, "--out",
                                                      "{dir}/taken/tidy.csv"),
         "taken is a file, not a directory"),
    Case("import-reference --out is a directory", built({"tidy.csv": None}, "import-reference", REFERENCE,
                                                        "--out", "{dir}/tidy.csv"),
         "tidy.csv: is a directory, not a file"),
    Case("import-reference --out on a file system nobody writes (/proc)",
         built({}, "import-reference", REFERENCE, "--out", "/proc/alignfreeze-tidy.csv"),
         "/proc/alignfreeze-tidy.csv"),    # root: "cannot be written"; anyone else: "not writable"
    Case("analyze --out under a file", built(A_FILE, "analyze", REFERENCE, "--out", "{dir}/taken/report.md"),
         "taken is a file, not a directory"),
    Case("analyze --out is a directory", built({"report.md": None}, "analyze", REFERENCE, "--out",
                                               "{dir}/report.md"),
         "report.md: is a directory, not a file"),
    Case("align --out under a file", built(A_FILE, *ALIGN, "--out", "{dir}/taken/fr.jsonl"),
         "taken is a file, not a directory"),
    Case("align --out is a directory", built({"fr.jsonl": None}, *ALIGN, "--out", "{dir}/fr.jsonl"),
         "fr.jsonl: is a directory, not a file"),
    # ---- DIR arguments
    Case("status of a directory that does not exist", built({}, "status", "{dir}/nowhere"),
         "nowhere: no such results directory"),
    Case("status of a file", built(A_FILE, "status", "{dir}/taken"), "taken: is a file, not a results directory"),
    Case("import-reference of a directory that does not exist",
         built({}, "import-reference", "{dir}/nowhere", "--out", "{dir}/tidy.csv"),
         "nowhere: no such file or directory"),
    Case("analyze of a path that does not exist", built({}, "analyze", "{dir}/nowhere"),
         "nowhere: no such file or directory"),
    Case("cache list of a file", built(A_FILE, "cache", "list", "--cache", "{dir}/taken"),
         "taken is a file, not a directory"),
]

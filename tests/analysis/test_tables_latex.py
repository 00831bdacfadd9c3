"""The LaTeX of ``alignfreeze analyze``, checked for structure (no TeX here): balanced braces
and environments, every row present, unique labels, true minus signs, column-fitting wrappers."""

from __future__ import annotations

import re

import pytest
from test_tables import records

from analysis import tables
from analysis.findings import AnalysisOptions, findings_of
from analysis.results import tidy_frame

_ENVIRONMENT = re.compile(r"\\(begin|end)\{([a-z*]+)\}")


@pytest.fixture(scope="module")
def findings():
    rows = records() + records("fastalign", shift=0.05)
    for row in rows:      # make some deltas negative: minus signs in cells and intervals
        if row["strategy"] == "front":
            row["value"] -= 0.04
    return findings_of(tidy_frame(rows, "test"), AnalysisOptions(n_resamples=200))


@pytest.fixture(scope="module")
def latex(findings):
    return tables.rendered_tables(findings, "latex", per_language=True)


def unescaped(cell: str) -> str:
    cell = re.sub(r"\\textbf\{(.*)\}", r"\1", cell.strip())
    for escaped, plain in {"$-$": "-", r"$\pm$": "\u00b1", r"\#": "#", r"\%": "%",
                           r"\_": "_", "-{}-": "--"}.items():
        cell = cell.replace(escaped, plain)
    return cell


def body_rows(text: str) -> list[list[str]]:
    return [[unescaped(cell) for cell in re.split(r"(?<!\\)&", line[:-2])]
            for line in text.splitlines()
            if line.endswith(r"\\") and not line.startswith((r"\multicolumn", r"\caption"))]


def test_braces_and_environments_balance(latex):
    depth = 0
    for line_number, line in enumerate(latex.splitlines(), 1):
        if line.startswith("%"):
            continue
        for char in re.sub(r"\\[{}]", "", line):
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, line_number
    assert depth == 0
    stack = []
    for kind, name in _ENVIRONMENT.findall(latex):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name
    assert stack == []


def test_every_row_is_present(findings, latex):
    shown = tables.display_tables(findings, per_language=True)
    parsed = body_rows(latex)
    for table in shown:
        for row in table.rows:
            assert row[table.heading_columns:] in parsed, (table.title, row)
        if table.heading_columns:     # the leading columns head their block instead
            for heading in {", ".join(row[:table.heading_columns]) for row in table.rows}:
                assert rf"\multicolumn{{{len(table.columns) - table.heading_columns}}}{{l}}" \
                       rf"{{\textit{{{tables.latex_escape(heading)}}}}} \\" in latex
    assert len(parsed) == sum(len(t.rows) for t in shown) + sum(
        (2 if t.long else 1) * (1 + any(label for label, _ in t.groups)) for t in shown)


def test_labels_unique_and_on_every_table(latex):
    labels = re.findall(r"\\label\{([^}]*)\}", latex)
    captions = re.findall(r"\\caption\{", latex)
    assert len(labels) == len(captions) == len(set(labels)) == 3 + 2 + 1   # one model: no totals
    assert all(label.startswith("tab:") for label in labels)
    assert {"tab:paper", "tab:mean-std", "tab:significance", "tab:per-language",
            "tab:languages-xlm-r-pos", "tab:languages-xlm-r-nli"} <= set(labels)
    twice = tables.display_tables.__globals__["_unique_labels"]
    copies = [tables.DisplayTable("a", ["x"], [], label="tab:a") for _ in range(3)]
    twice(copies)
    assert [t.label for t in copies] == ["tab:a", "tab:a-2", "tab:a-3"]


def test_minus_signs_are_true_minus_signs(latex):
    numeric_minus = 0
    for line in latex.splitlines():
        if not line.endswith(r"\\") or line.startswith((r"\caption", r"\multicolumn")):
            continue
        for cell in re.split(r"(?<!\\)&", line[:-2]):
            assert not re.search(r"(?<![\w.$])-\d", cell), cell
            numeric_minus += cell.count("$-$")
    assert numeric_minus > 10
    assert tables.latex_escape("-1.5") == "$-$1.5"
    assert tables.latex_escape("[-0.2, +0.5]") == "[$-$0.2, +0.5]"
    assert tables.latex_escape("blocks 2-4 frozen") == "blocks 2-4 frozen"
    assert tables.latex_escape("--aligner all") == "-{}-aligner all"


def test_floats_fit_a_column_and_per_language_tables_are_longtables(findings, latex):
    floats = latex.split(r"\begin{table}")[1:]
    assert len(floats) == 3
    for block in floats:
        block = block.split(r"\end{table}")[0]
        assert r"\resizebox{\ifdim\width>\columnwidth\columnwidth\else\width\fi}{!}{%" in block
        assert r"\toprule" in block and r"\bottomrule" in block
    longtables = re.findall(r"\\begin\{longtable\}.*?\\end\{longtable\}", latex, re.DOTALL)
    assert len(longtables) == 3
    for block in longtables:
        assert r"\endfirsthead" in block and r"\endhead" in block and r"\endlastfoot" in block
        assert r"\begin{table}" not in block
    assert "needs \\usepackage{booktabs,graphicx,longtable}" in latex


def test_grouped_task_headers(findings):
    text = tables.latex_table(tables.paper_table(findings))
    assert (r" &  & \multicolumn{4}{c}{PoS} & \multicolumn{4}{c}{NLI} & "
            r"\multicolumn{2}{c}{total} \\") in text
    assert r"\cmidrule(lr){3-6} \cmidrule(lr){7-10} \cmidrule(lr){11-12}" in text
    assert r"Model & Strategy & avg & en & \#dn & \#up & avg & en & \#dn & \#up & \#dn & \#up \\" \
        in text
    means = tables.latex_table(tables.language_means_tables(findings)[0])
    assert r" &  & \multicolumn{2}{c}{dico, before} \\" in means
    assert r"\begin{tabular}[b]{@{}c@{}}AlignFreeze\\front\end{tabular}" in means
    assert r"\caption{XLM-R, PoS: accuracy per language, mean $\pm$ std over seeds (aligner " \
           r"dico, schedule before)}\label{tab:languages-xlm-r-pos} \\" in means


def test_best_in_bold(findings):
    text = tables.latex_table(tables.mean_std_table(findings))
    assert r"full realignment (dico, before) & \textbf{56.3 $\pm$ 0.8} & \textbf{93.0 $\pm$ 0.8}" \
        in text

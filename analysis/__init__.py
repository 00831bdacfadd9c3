"""Analysis of AlignFreeze results: the paper's table, significance, plots, reports.

results      load run directories, tidy CSV/Parquet and the authors' CSVs
reference    import of the authors' CSVs; the paper's published table
statistics   means, population stds, target averages, the paper's count
significance tests, Holm / Benjamini-Hochberg, bootstrap intervals
findings     one analysis of a tidy table, read by every renderer
tables       the paper's table and the significance tables, rendered
plots        delta bars, heatmaps, metric against frozen depth, window heatmaps
search_tables the depth search's per-study tables (validation, test, the chosen setting)
report       the self-contained HTML report
export       alignfreeze export: a run directory as one tidy per-seed, per-language table
commands     ``alignfreeze analyze``, ``import-reference`` and ``export``
"""

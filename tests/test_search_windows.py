"""Windows of frozen blocks in the depth search: canonical settings, the exact frozen tensors, the figures,
and the search tables of ``alignfreeze analyze``."""

from __future__ import annotations

import argparse
import html
import json


from analysis import commands, vocabulary
from analysis.findings import AnalysisOptions, findings_of
from analysis.plots import window_figure, window_points
from analysis.results import tidy_frame
from orchestrator.depth_search import run_depth_search
from search_spaces.freezing_depth import FreezingDepthSpace, window_strategy
from test_depth_search import quiet, search_experiment, session_factory
from test_freezing import BERT_BLOCK, bert
from trainables.freezing import frozen_parameter_names


def test_windows_touching_either_end_are_front_and_back():
    assert window_strategy(0, 0, 4) == "full"
    assert window_strategy(2, 0, 4) == "full"
    assert window_strategy(0, 2, 4) == "front:2"            # touches block 0
    assert window_strategy(1, 3, 4) == "back:3"             # ends at the last block
    assert window_strategy(0, 4, 4) == "front:4"            # every block: one set from any side
    assert window_strategy(1, 2, 4) == "range:2-4"          # blocks 1, 2 (positions 2, 3)
    space = FreezingDepthSpace(("window",), 0, 3)
    assert space.strategies(4) == ["full", "front:1", "range:2-3", "range:3-4", "back:1", "front:2",
                                   "range:2-4", "back:2", "front:3", "back:3"]
    # windows subsume the ends: adding front and back adds no setting
    assert sorted(FreezingDepthSpace(("front", "back", "window"), 0, 3).strategies(4)) == sorted(
        space.strategies(4))
    # a start past the last fitting one is moved back: the window ends at the last block
    assert space.strategy("window", 2, 4, start=3) == "back:2"
    for strategy in space.strategies(4):
        assert space.strategy_of_params(space.params_of(strategy, 4), 4) == strategy
    assert FreezingDepthSpace(("front", "window")).params_of("back:2", 4) == {"depth": 2, "side": "window",
                                                                              "start": 2}


def test_a_window_freezes_exactly_its_blocks():
    model = bert(4)
    # range:2-4 = blocks 1 and 2 of 4; nothing else (no embeddings, no pooler, no other block)
    expected = {f"encoder.layer.{block}.{name}" for block in (1, 2) for name in BERT_BLOCK}
    assert len(expected) == 32
    assert "encoder.layer.1.attention.self.query.weight" in expected
    assert "encoder.layer.2.output.LayerNorm.bias" in expected
    assert frozen_parameter_names(model, "range:2-4") == expected
    # every setting of a window search freezes the blocks of its window, whatever string it ends as
    space = FreezingDepthSpace(("window",), 1, 3)
    for depth in range(1, 4):
        for start in range(0, 4 - depth + 1):
            strategy = space.strategy("window", depth, 4, start)
            names = frozen_parameter_names(model, "none" if strategy == "full" else strategy)
            assert names == {f"encoder.layer.{b}.{n}" for b in range(start, start + depth) for n in BERT_BLOCK}


def test_a_window_search_runs_windows(tmp_path):
    experiment = search_experiment({"sides": ["window"], "depths": [1, 2], "trials": 7, "sampler": "grid"})
    [by_strategy] = experiment.candidates.values()
    assert list(by_strategy) == ["front:1", "range:2-3", "range:3-4", "back:1", "front:2", "range:2-4", "back:2"]
    assert by_strategy["range:2-4"][0].freeze_spec == "range:2-4"
    outcome = run_depth_search(experiment, tmp_path, session_factory=session_factory(), log=quiet)
    [summary] = outcome["studies"]
    rows = {row["strategy"]: row for row in summary["evaluated"]}
    assert len(rows) == 7
    assert (rows["range:2-4"]["side"], rows["range:2-4"]["start"], rows["range:2-4"]["depth"]) == ("window", 1, 2)


def window_findings():
    records = []
    values = {"baseline": 0.30, "full": 0.40, "front:1": 0.41, "back:1": 0.42, "range:2-3": 0.43,
              "range:3-4": 0.44, "front:2": 0.45, "range:2-4": 0.46, "back:2": 0.47}
    for strategy, value in values.items():
        for seed in (1, 2):
            for language, shift in (("fr", 0.01), ("ru", -0.01), ("en", 0.3)):
                records.append({"model": "tiny-mbert", "task": "pos", "strategy": strategy,
                                "aligner": "none" if strategy == "baseline" else "dico", "seed": seed,
                                "language": language, "metric": "accuracy",
                                "value": value + shift + 0.002 * seed, "num_blocks": 4,
                                "is_target": language != "en"})
    return findings_of(tidy_frame(records, "synthetic"), AnalysisOptions(n_resamples=100))


def test_window_heatmap_points_are_first_block_by_length():
    points = window_points(window_findings(), "tiny-mbert", "pos")
    cells = {(int(r.start), int(r.length)): round(r.mean, 4) for r in points.itertuples()}
    assert cells == {(0, 1): 0.413, (3, 1): 0.423, (1, 1): 0.433, (2, 1): 0.443, (0, 2): 0.453,
                     (1, 2): 0.463, (2, 2): 0.473}
    figure = window_figure(window_findings(), "tiny-mbert", "pos")
    texts = sorted(text.get_text() for text in figure.axes[0].texts)
    assert texts == sorted(["41.3", "42.3", "43.3", "44.3", "45.3", "46.3", "47.3"])
    assert vocabulary.frozen_window("range:0-2") is None          # embeddings: not a window of blocks
    assert vocabulary.frozen_window("back:1") is None             # needs the number of blocks


def test_analyze_on_a_search_directory_shows_each_studys_table(tmp_path, capsys):
    experiment = search_experiment({"trials": 3})
    run_depth_search(experiment, tmp_path, session_factory=session_factory(), log=quiet)
    root = argparse.ArgumentParser()
    commands.add_analyze_arguments(root)
    assert commands.run_analyze(root.parse_args([str(tmp_path), "--bootstrap", "100"])) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "search" / "tiny-mbert_pos_dico_before.json").read_text())
    from analysis.search_tables import format_study

    assert format_study(summary) in out
    [chosen] = [line for line in out.splitlines() if line[:4].endswith("*")]
    assert summary["best"]["strategy"] in chosen
    report = tmp_path / "report.html"
    assert commands.run_analyze(root.parse_args([str(tmp_path), "--out", str(report), "--no-figures",
                                                 "--bootstrap", "100"])) == 0
    page = report.read_text()
    assert "<h2>Depth search</h2>" in page and html.escape(format_study(summary)) in page

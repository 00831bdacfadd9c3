"""Inputs of the commands besides run and search: analyze, import-reference, plan, score, align, cache.

Empty, binary, truncated, nested or hostile files, and values the command
cannot use: one line naming the file (and line), exit status 2, nothing written.
"""

from __future__ import annotations

from hostile_catalogue import Case
from hostile_catalogue.common import DEMO
from hostile_catalogue.paths import ALIGN, REFERENCE, built

BINARY = bytes(range(128, 256)) * 4
TIDY_HEADER = "model,task,strategy,aligner,seed,language,metric,value\n"
AUTHORS_HEADER = "seed,model,task,method,final_eval_fr_accuracy\n"
BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcdef", "bcdefg"))

CASES = [
    # ---- analyze
    Case("analyze: a CSV whose values are all empty", built({"t.csv": TIDY_HEADER + ",,,,,,,\n" * 3}, "analyze",
                                                            "{dir}/t.csv"),
         "t.csv:2: column seed: empty"),
    Case("analyze: a CSV without a score", built({"t.csv": TIDY_HEADER + "m,pos,baseline,none,1,fr,accuracy,\n"},
                                                 "analyze", "{dir}/t.csv"),
         "t.csv:2: column value: empty"),
    Case("analyze: a seed that is not an integer",
         built({"t.csv": TIDY_HEADER + "m,pos,baseline,none,1.5,fr,accuracy,0.5\n"}, "analyze", "{dir}/t.csv"),
         "t.csv:2: column seed: not an integer: '1.5'"),
    Case("analyze: a seed that is infinite",
         built({"t.csv": TIDY_HEADER + "m,pos,baseline,none,inf,fr,accuracy,0.5\n"}, "analyze", "{dir}/t.csv"),
         "t.csv:2: column seed: not an integer: 'inf'"),
    Case("analyze: a binary file named .csv", built({"t.csv": BINARY}, "analyze", "{dir}/t.csv"),
         "t.csv: not UTF-8 text"),
    Case("analyze: an empty file", built({"t.csv": ""}, "analyze", "{dir}/t.csv"), "t.csv: empty file: no header line"),
    Case("analyze: a CSV without the tidy columns", built({"t.csv": "a,b\n1,2\n"}, "analyze", "{dir}/t.csv"),
         "t.csv:1: tidy table lacks column(s) model, task"),
    Case("analyze: a header and nothing else", built({"t.csv": TIDY_HEADER}, "analyze", "{dir}/t.csv"),
         "no completed results to analyse"),
    Case("analyze: a binary file named .parquet", built({"t.parquet": BINARY}, "analyze", "{dir}/t.parquet"),
         "t.parquet: not a readable Parquet file"),
    Case("analyze: a run directory without results",
         built({"out/experiment.json": '{"trials": []}', "out/results": None}, "analyze", "{dir}/out"),
         "no completed results to analyse"),
    Case("analyze: an authors' CSV with an empty score",
         built({"a.csv": AUTHORS_HEADER + "1,m,udpos,baseline,\n"}, "analyze", "{dir}/a.csv"),
         "a.csv:2: column final_eval_fr_accuracy: not a number: ''"),
    # ---- import-reference
    Case("import-reference: an empty directory", built({"authors": None}, "import-reference", "{dir}/authors",
                                                       "--out", "{dir}/tidy.csv"),
         "authors: no CSV files"),
    Case("import-reference: an unknown method",
         built({"authors/a.csv": AUTHORS_HEADER + "1,m,udpos,before_giza,0.5\n"}, "import-reference",
               "{dir}/authors", "--out", "{dir}/tidy.csv"),
         "a.csv:2: unknown method 'before_giza'"),
    Case("import-reference: a seed that is not a number",
         built({"authors/a.csv": AUTHORS_HEADER + "one,m,udpos,baseline,0.5\n"}, "import-reference",
               "{dir}/authors", "--out", "{dir}/tidy.csv"),
         "a.csv:2: column seed: not an integer: 'one'"),
    Case("import-reference: a binary file", built({"authors/a.csv": BINARY}, "import-reference", "{dir}/authors",
                                                  "--out", "{dir}/tidy.csv"),
         "a.csv: not UTF-8 text"),
    Case("import-reference: an empty file", built({"a.csv": ""}, "import-reference", "{dir}/a.csv",
                                                  "--out", "{dir}/tidy.csv"),
         "a.csv: empty file: no header line"),
    Case("import-reference: --out of another type", built({}, "import-reference", REFERENCE, "--out", "{dir}/t.xlsx"),
         "--out must end in .csv or .parquet, got 't.xlsx'"),
    # ---- plan --throughput
    Case("plan: a throughput file with an alias bomb", built({"t.yaml": BOMB}, "plan", str(DEMO), "--throughput",
                                                             "{dir}/t.yaml"),
         "invalid YAML: more than 100000 values once its aliases are expanded"),
    Case("plan: a throughput file with a key twice",
         built({"t.yaml": "m: {finetune_seq_per_s: 1, realign_pairs_per_s: 1}\nm: {finetune_seq_per_s: 2}\n"},
               "plan", str(DEMO), "--throughput", "{dir}/t.yaml"),
         "t.yaml:2: invalid YAML: duplicate key 'm'"),
    Case("plan: a throughput JSON with NaN",
         built({"t.json": '{"m": {"finetune_seq_per_s": NaN, "realign_pairs_per_s": 1}}'}, "plan", str(DEMO),
               "--throughput", "{dir}/t.json"),
         "t.json: invalid JSON: NaN is not JSON"),
    Case("plan: a binary throughput file", built({"t.yaml": BINARY}, "plan", str(DEMO), "--throughput", "{dir}/t.yaml"),
         "t.yaml:1: throughput file is not UTF-8 text"),
    Case("plan: an empty throughput file", built({"t.yaml": ""}, "plan", str(DEMO), "--throughput", "{dir}/t.yaml"),
         "t.yaml: expected a mapping of model"),
    Case("plan: a throughput file that is a directory", built({"t.yaml": None}, "plan", str(DEMO), "--throughput",
                                                              "{dir}/t.yaml"),
         "t.yaml: throughput file not found"),
    Case("plan: an experiment file that does not exist", built({}, "plan", "{dir}/nowhere.yaml"),
         "nowhere.yaml: experiment file not found"),
    # ---- score
    Case("score: a binary JSONL file", built({"p.jsonl": BINARY}, "score", "pos", "{dir}/p.jsonl"),
         "p.jsonl:1: not UTF-8 text"),
    Case("score: an empty JSONL file", built({"p.jsonl": ""}, "score", "nli", "{dir}/p.jsonl"),
         "p.jsonl: no line to score"),
    Case("score: a JSONL line nested past the stack",
         built({"p.jsonl": '{"gold": ' + "[" * 100_000 + "}\n"}, "score", "nli", "{dir}/p.jsonl"),
         "p.jsonl:1: not JSON this tool reads: nested too deep"),
    Case("score: a SQuAD file nested past the stack",
         built({"d.json": "[" * 100_000, "p.json": "{}"}, "score", "qa", "{dir}/d.json", "{dir}/p.json"),
         "d.json: not JSON this tool reads: nested too deep"),
    Case("score: a binary SQuAD file", built({"d.json": BINARY, "p.json": "{}"}, "score", "qa", "{dir}/d.json",
                                             "{dir}/p.json"),
         "d.json: not UTF-8 text"),
    Case("score: a directory", built({"p.jsonl": None}, "score", "pos", "{dir}/p.jsonl"), "p.jsonl: file not found"),
    # ---- align
    Case("align: a setting that is a list", built({}, *ALIGN, "--setting", "symmetric=[1, 2]"),
         "--setting 'symmetric': expects one value"),
    Case("align: a setting that is an alias bomb", built({}, *ALIGN, "--setting", "x=&a [*a]"),
         "--setting 'x': expects one value"),
    Case("align: a setting that is not YAML", built({}, *ALIGN, "--setting", 'x="open'),
         "--setting 'x': not a value"),
    Case("align: a setting of the wrong type", built({}, *ALIGN, "--setting", "symmetric=yes please"),
         "symmetric must be true or false, got 'yes please'"),
    Case("align: a binary dictionary", built({"d.txt": BINARY}, *ALIGN[:-1], "{dir}/d.txt"), "d.txt: not UTF-8 text"),
    Case("align: a parallel file that does not exist",
         built({}, "align", "--aligner", "dico", "--language", "fr", "--parallel", "{dir}/nowhere.tsv",
               "--dictionary", "bundled:dictionaries/muse/en-fr.first3000.txt"),
         "nowhere.tsv: file or directory not found"),
    # ---- cache
    Case("cache prune of a file", built({"cache": "x"}, "cache", "prune", "--cache", "{dir}/cache"),
         "/cache is a file, not a directory"),
]

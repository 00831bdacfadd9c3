"""Damaged results directories given to ``status``, ``run`` and ``analyze``: a manifest that is not one.

``experiment.json`` lists the planned trials; every reader checks its shape
(``orchestrator.results.read_manifest``) and refuses a damaged one in one
line naming it, before Ray starts and before anything is moved or written.
A damaged result, error file or study summary is not a refusal: ``status``
lists it, a run moves it aside and reruns its trial (tests/test_hostile_paths.py).
"""

from __future__ import annotations

import json

from hostile_catalogue import Case
from hostile_catalogue.common import DEMO
from hostile_catalogue.paths import built

DAMAGED = "damaged manifest"
MANIFESTS = {          # id -> (content of experiment.json, what the message says)
    "a list": ("[1, 2]", f"{DAMAGED}: a JSON list, not an object"),
    "truncated": ('{"name": "demo", "trials": [', f"{DAMAGED}: not valid JSON"),
    "not UTF-8": (b'{"name": "d\xe9mo", "trials": []}', f"{DAMAGED}: not valid JSON"),
    "NaN in it": ('{"name": "demo", "trials": [], "x": NaN}', f"{DAMAGED}: not valid JSON"),
    "trials not a list": ('{"name": "demo", "trials": "abc"}', f"{DAMAGED}: 'trials' is not a list"),
    "a trial without an id": ('{"name": "demo", "trials": [{"spec": {}}]}', f"{DAMAGED}: trial 1 has no trial_id"),
    "a trial that is a number": ('{"name": "demo", "trials": [7]}', f"{DAMAGED}: trial 1 is not an object"),
    "a trial id that is a path": ('{"name": "demo", "trials": [{"trial_id": "../../etc/passwd"}]}',
                                  "trial_id '../../etc/passwd', not a plain file name"),
    "a trial id that is a number": ('{"name": "demo", "trials": [{"trial_id": 5}]}',
                                    f"{DAMAGED}: trial 1 has no trial_id"),
    "a spec that is a list": ('{"name": "demo", "trials": [{"trial_id": "t1", "spec": []}]}',
                              "trial 1 (t1): 'spec' is not an object"),
    "search not an object": ('{"name": "demo", "search": 3, "trials": []}', f"{DAMAGED}: 'search' is not an object"),
}


def _status(content):
    return built({"out/experiment.json": content}, "status", "{dir}/out")


def _run(content):
    return built({"out/experiment.json": content, "out/results/t1.json": "{}"}, "run", str(DEMO),
                 "--output", "{dir}/out")


CASES = [Case(f"status: manifest {name}", _status(content), expected)
         for name, (content, expected) in MANIFESTS.items()]
CASES += [Case(f"run: manifest {name}", _run(MANIFESTS[name][0]), MANIFESTS[name][1])
          for name in ("a list", "truncated", "a trial without an id", "a trial id that is a path")]
CASES += [
    Case("status --json: manifest a list", built({"out/experiment.json": "[]"}, "status", "{dir}/out", "--json"),
         f"{DAMAGED}: a JSON list, not an object"),
    Case("analyze: manifest a list", built({"out/experiment.json": "[]", "out/results": None}, "analyze", "{dir}/out"),
         "experiment.json:1: expected a JSON object"),
    Case("analyze: a result whose metrics are a list",
         built({"out/experiment.json": '{"trials": []}', "out/results/t1.json": json.dumps(
             {"trial_id": "t1", "spec": {"model": "m", "task": "pos", "strategy": "baseline", "seed": 1},
              "metrics": {"fr": [0.5]}, "average": {}})}, "analyze", "{dir}/out"),
         "t1.json: metrics of 'fr' are not an object"),
    Case("analyze: a result whose score is text",
         built({"out/experiment.json": '{"trials": []}', "out/results/t1.json": json.dumps(
             {"trial_id": "t1", "spec": {"model": "m", "task": "pos", "strategy": "baseline", "seed": 1},
              "metrics": {"fr": {"accuracy": "high"}}, "average": {}})}, "analyze", "{dir}/out"),
         "t1.json: metric 'fr' 'accuracy': not a number: 'high'"),
    Case("analyze: a result whose spec is a list",
         built({"out/experiment.json": '{"trials": []}', "out/results/t1.json": json.dumps(
             {"trial_id": "t1", "spec": [1], "metrics": {}, "average": {}})}, "analyze", "{dir}/out"),
         "t1.json: 'spec' is not an object"),
]

"""``alignfreeze cache list|prune``: what the cache of realigned encoders holds, and clearing it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from torch import nn

from orchestrator.cli import main
from trainables.realignment.realigned_cache import LAST_USED_FILE, STARTED_FILE, RealignedCache


def store(location: str, key: str, model: str = "tiny-mbert", days_unused: float = 0.0) -> None:
    cache = RealignedCache(location)
    identity = {"frozen": {"num_blocks": 4, "blocks": [0, 1], "embeddings": False}, "seed": 3}
    cache.save(key, nn.Linear(8, 8), {"identity": identity, "model": model, "strategy": "front",
                                      "aligner": "dico", "steps": 4})
    when = datetime.now(timezone.utc) - timedelta(days=days_unused)
    cache._write_bytes(cache._path(key, LAST_USED_FILE), when.isoformat(timespec="seconds").encode())


def test_list_shows_every_entry(tmp_path, capsys):
    location = str(tmp_path / "cache")
    assert main(["cache", "list", "--cache", location]) == 0
    assert "no realigned encoder" in capsys.readouterr().out
    store(location, "aaaaaaaaaaaaaaaa")
    store(location, "bbbbbbbbbbbbbbbb", model="tiny-xlmr", days_unused=40)
    assert main(["cache", "list", "--cache", location]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["KEY", "MODEL", "FROZEN"]
    assert out[1].split()[:2] == ["aaaaaaaaaaaaaaaa", "tiny-mbert"] and "blocks 0-1 of 4 (front)" in out[1]
    assert out[2].split()[:2] == ["bbbbbbbbbbbbbbbb", "tiny-xlmr"]
    assert out[3].startswith("2 realigned encoder(s)")
    assert main(["cache", "list", "--cache", location, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["key"], r["model"], r["steps"], r["seed"], r["frozen"]) for r in rows] == [
        ("aaaaaaaaaaaaaaaa", "tiny-mbert", 4, 3, "blocks 0-1 of 4"),
        ("bbbbbbbbbbbbbbbb", "tiny-xlmr", 4, 3, "blocks 0-1 of 4")]
    assert all(r["bytes"] > 8 * 8 * 4 and r["created"] and r["last_used"] for r in rows)


def test_prune_older_than_removes_only_the_entries_unused_for_that_long(tmp_path, capsys):
    location = str(tmp_path / "cache")
    store(location, "aaaaaaaaaaaaaaaa", days_unused=1)
    store(location, "bbbbbbbbbbbbbbbb", days_unused=40)
    assert main(["cache", "prune", "--cache", location, "--older-than", "30d"]) == 0
    out = capsys.readouterr().out
    assert "removed bbbbbbbbbbbbbbbb" in out and "aaaaaaaaaaaaaaaa" not in out
    assert [entry.key for entry in RealignedCache(location).entries()] == ["aaaaaaaaaaaaaaaa"]
    assert not (tmp_path / "cache" / "bbbbbbbbbbbbbbbb").exists()
    # without --older-than: everything
    assert main(["cache", "prune", "--cache", location]) == 0
    assert "removed aaaaaaaaaaaaaaaa" in capsys.readouterr().out
    assert RealignedCache(location).entries() == []


def test_prune_removes_what_a_crashed_write_left_once_it_is_old(tmp_path, capsys):
    location = str(tmp_path / "cache")
    store(location, "aaaaaaaaaaaaaaaa")
    cache = RealignedCache(location)
    for attempt, hours in (("crashed", 2), ("in-progress", 0)):   # attempts no marker names
        started = datetime.now(timezone.utc) - timedelta(hours=hours)
        cache._write_bytes(cache._path("aaaaaaaaaaaaaaaa", attempt, STARTED_FILE),
                           started.isoformat(timespec="seconds").encode())
    assert main(["cache", "prune", "--cache", location, "--older-than", "1d"]) == 0
    out = capsys.readouterr().out
    assert "removed unfinished write" in out and "crashed" in out and "in-progress" not in out
    assert (tmp_path / "cache" / "aaaaaaaaaaaaaaaa" / "in-progress").is_dir()
    assert cache.load("aaaaaaaaaaaaaaaa", nn.Linear(8, 8)) is not None


def test_an_unwritable_location_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["cache", "prune", "--cache", str(blocker / "cache")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is not writable" in error and "a-file" in error
    assert main(["cache", "list", "--cache", "nosuchprotocol://bucket/x"]) == 2
    assert "Protocol not known" in capsys.readouterr().err


def test_a_bad_duration_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "prune", "--cache", str(tmp_path), "--older-than", "a month"])
    assert exit_info.value.code == 2
    assert "expected a number and a unit" in capsys.readouterr().err


def test_an_object_store_uri_works_the_same(capsys):
    location = "memory://alignfreeze-test/command"
    store(location, "cccccccccccccccc", days_unused=3)
    assert main(["cache", "list", "--cache", location, "--json"]) == 0
    assert [row["key"] for row in json.loads(capsys.readouterr().out)] == ["cccccccccccccccc"]
    assert main(["cache", "prune", "--cache", location, "--older-than", "2d"]) == 0
    assert "removed cccccccccccccccc" in capsys.readouterr().out
    assert RealignedCache(location).entries() == []

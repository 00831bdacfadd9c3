"""``alignfreeze cache``: show and clear the shared cache of realigned encoders.

    alignfreeze cache list  [--cache LOCATION] [--json]
    alignfreeze cache prune [--cache LOCATION] [--older-than D]

``LOCATION`` is a path or a storage URI (as ``cache:`` in an experiment
file); by default ``$ALIGNFREEZE_REALIGNED_CACHE``, else
``$ALIGNFREEZE_CACHE/realigned``. ``list`` prints one line per entry: key,
model, frozen blocks (and the strategy that first computed it), aligner,
steps, seed, size, created, last used. ``prune`` removes the entries not
used for ``D`` (``30d``, ``12h``, ``90m``, ``2w``), or every entry without
``--older-than``, and the unfinished writes a crashed trial left (after an
hour); it asks nothing and prints what it removed. A location that cannot
be read, or for ``prune`` written, is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from typing import Any

from trainables.errors import SpecError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    for name, text in (("list", "show the realigned encoders in the cache"),
                       ("prune", "remove realigned encoders (all, or those unused for --older-than)")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--cache", metavar="LOCATION",
                            help="a path or a storage URI (default: $ALIGNFREEZE_REALIGNED_CACHE, "
                                 "else $ALIGNFREEZE_CACHE/realigned)")
        if name == "list":
            action.add_argument("--json", action="store_true", help="one JSON list on stdout")
        else:
            action.add_argument("--older-than", metavar="D", type=_duration_argument,
                                help="only entries last used more than D ago: 30d, 12h, 90m, 2w")


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w``; a SpecError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text))
    if not match:
        raise SpecError(f"expected a number and a unit (s, m, h, d, w), e.g. 30d or 12h; got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _duration_argument(text: str) -> float:
    try:
        return parse_duration(text)
    except SpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_cache(args: argparse.Namespace) -> int:
    from trainables.realignment.realigned_cache import RealignedCache

    cache = RealignedCache(args.cache)
    if cache.local and os.path.exists(cache.root) and not os.path.isdir(cache.root):
        raise SpecError(f"cache location {cache.location} is a file, not a directory")
    if args.cache_action == "prune":
        cache.check_writable()
    try:
        entries = cache.entries()
    except OSError as error:
        raise SpecError(f"cache location {cache.location} cannot be read: {error}") from None
    if args.cache_action == "list":
        return _list(cache, entries, args.json)
    return _prune(cache, entries, args.older_than)


def _row(entry) -> dict[str, Any]:
    identity = entry.meta.get("identity") or {}
    frozen = identity.get("frozen") or {}
    return {"key": entry.key, "model": entry.meta.get("model"), "strategy": entry.meta.get("strategy"),
            "frozen": _frozen_summary(frozen) if frozen else None, "aligner": entry.meta.get("aligner"),
            "steps": entry.meta.get("steps"), "seed": identity.get("seed"), "bytes": entry.bytes,
            "created": entry.created, "last_used": entry.last_used, "sha256": entry.meta.get("sha256"),
            **({"damaged": True} if entry.meta.get("damaged") else {})}


def _frozen_summary(frozen: dict[str, Any]) -> str:
    blocks = frozen.get("blocks") or []
    parts = []
    if blocks:
        parts.append(f"blocks {blocks[0]}-{blocks[-1]}" if blocks == list(range(blocks[0], blocks[-1] + 1))
                     else "blocks " + ",".join(map(str, blocks)))
    if frozen.get("embeddings"):
        parts.append("embeddings")
    return (" + ".join(parts) or "none") + f" of {frozen.get('num_blocks')}"


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def _list(cache, entries, as_json: bool) -> int:
    rows = [_row(entry) for entry in entries]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no realigned encoder in {cache.location}")
        return 0
    header = ("KEY", "MODEL", "FROZEN (STRATEGY)", "ALIGNER", "STEPS", "SEED", "SIZE", "CREATED", "LAST USED")
    table = [header] + [(
        row["key"] + (" (damaged)" if row.get("damaged") else ""), str(row["model"]),
        f"{row['frozen']} ({row['strategy']})", str(row["aligner"]), str(row["steps"]), str(row["seed"]),
        _size(row["bytes"]), str(row["created"]), str(row["last_used"])) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    print(f"{len(rows)} realigned encoder(s), {_size(sum(row['bytes'] for row in rows))} in {cache.location}")
    return 0


def _prune(cache, entries, older_than: float | None) -> int:
    from trainables.realignment.realigned_cache import parse_time

    now = time.time()
    removed, freed = 0, 0
    for entry in entries:
        used = parse_time(entry.last_used) or parse_time(entry.created)
        if older_than is not None and used is not None and now - used < older_than:
            continue
        size = cache.remove(entry.key)
        removed, freed = removed + 1, freed + size
        print(f"removed {entry.key}  {entry.meta.get('model')}  {entry.meta.get('strategy')}  "
              f"steps {entry.meta.get('steps')}  {_size(size)}  last used {entry.last_used}")
    for path in cache.orphans(now):
        size = cache.remove_orphan(path)
        freed += size
        print(f"removed unfinished write {path}  {_size(size)}")
    kept = len(entries) - removed
    print(f"pruned {removed} realigned encoder(s), {_size(freed)} freed; {kept} kept in {cache.location}")
    return 0

"""MUSE bilingual dictionaries, fetched from where MUSE publishes them.

``realignment.dictionaries: muse`` (for every language, or as one
language's value) names MUSE's ground-truth ``en-xx.txt`` dictionary
(Conneau et al., 2018), the one the paper used. A trial fetches it once
into the shared cache (``$ALIGNFREEZE_CACHE/muse/en-xx.txt``), written
atomically, so concurrent trials on a node never read half a file.
``$ALIGNFREEZE_MUSE_URL`` replaces the base address (a mirror, or an
offline copy as ``file:///...``). Download it yourself and give the path
instead where the nodes have no network.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from trainables.artifacts import cache_root, write_atomically
from trainables.errors import DataError

MUSE_SOURCE = "muse"
MUSE_BASE_URL = "https://dl.fbaipublicfiles.com/arrival/dictionaries"
URL_ENV = "ALIGNFREEZE_MUSE_URL"


def muse_url(language: str) -> str:
    base = os.environ.get(URL_ENV, MUSE_BASE_URL).rstrip("/")
    return f"{base}/en-{language}.txt"


def muse_dictionary(language: str, timeout_s: float = 60.0) -> Path:
    """The cached MUSE en-``language`` dictionary, fetched first if absent."""
    path = cache_root() / "muse" / f"en-{language}.txt"
    if path.is_file():
        return path
    url = muse_url(language)

    def download(temporary: str) -> None:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(temporary, "wb") as out:
            shutil.copyfileobj(response, out)

    try:
        write_atomically(path, download)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataError(f"cannot fetch the MUSE dictionary en-{language} ({reason}); download it and "
                        f"give its path in realignment.dictionaries.{language}", url) from None
    return path

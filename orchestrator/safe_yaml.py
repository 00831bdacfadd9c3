"""Loading a user's YAML file with limits: hostile input fails in one line, in milliseconds.

``yaml.safe_load`` builds no objects but plain data; it still accepts
what breaks a tool later: an alias "bomb" (anchors nested a few levels,
a few hundred bytes that stand for billions of values once anything walks
them: a dry run hangs, an error message runs to megabytes), a huge file,
a key given twice (the last silently wins), a file that is not UTF-8.
``load_yaml_file`` refuses each with a ``DataError`` naming the file and,
where there is one, the line.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml

from trainables.errors import MAX_ECHO, DataError, short  # noqa: F401  (short: used across orchestrator)

MAX_FILE_BYTES = 1 << 20         # 1 MiB: an experiment file of the paper's full grid is a few KiB
MAX_VALUES = 100_000             # values (scalars, lists, mappings) with every alias expanded

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml also caps the nesting depth
_UTF16_32 = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
             codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


class _LimitedLoader(_Base):
    """A safe loader that counts the values a document stands for and refuses duplicate keys."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _count_values(node)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":     # '<<: *defaults' may be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:                                 # unhashable: the base class says so
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {short(key)} (the last one would silently win)",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads 2e-5 as a string: a float needs a dot there. YAML 1.2, and
# every researcher writing a learning rate, means the number.
_Scientific = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_LimitedLoader.add_implicit_resolver("tag:yaml.org,2002:float", _Scientific, list("-+0123456789"))


def _count_values(root: Any) -> None:
    """Raise if ``root`` expands to more than MAX_VALUES values or refers to itself.

    Linear in the distinct nodes: the size of a node shared by aliases is counted once
    and multiplied by its uses, never expanded.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a value that contains it",
                                              node.start_mark)
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            open_nodes.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [child for pair in node.value for child in pair]
            for child in children:
                total += size(child)
                if total > MAX_VALUES:
                    raise yaml.composer.ComposerError(
                        None, None, f"more than {MAX_VALUES} values once its aliases are expanded "
                                    f"(an alias bomb?)", node.start_mark)
            open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def parse_yaml_value(text: str, what: str) -> Any:
    """One value written in YAML (a command-line override), under the file's limits; a
    one-line SpecError naming ``what`` when it is not valid YAML."""
    from trainables.errors import SpecError

    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"{what}: a value of {len(text):,} characters; the limit is {MAX_FILE_BYTES:,}")
    try:
        return yaml.load(text, Loader=_LimitedLoader) if text.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or (str(error).splitlines() or ["?"])[0]
        raise SpecError(f"{what}: invalid YAML value {short(text)} ({problem[:2 * MAX_ECHO]})") from None
    except RecursionError:
        raise SpecError(f"{what}: invalid YAML value (nested too deep)") from None


def load_yaml_file(path: str | Path, what: str = "file") -> Any:
    """The data of YAML file ``path``, or a one-line DataError naming it (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found", path)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise DataError(f"{what} is {path.stat().st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}", path)
    data = path.read_bytes()
    for bom, encoding in _UTF16_32.items():
        if data.startswith(bom):
            raise DataError(f"{what} is {encoding} text: save it as UTF-8", path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"{what} is not UTF-8 text (byte 0x{data[error.start]:02x}); save it as UTF-8",
                        path, line) from None
    try:
        return yaml.load(text, Loader=_LimitedLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or (str(error).splitlines() or ["?"])[0]
        problem = problem if len(problem) <= 2 * MAX_ECHO else problem[:2 * MAX_ECHO - 3] + "..."
        raise DataError(f"invalid YAML: {problem}", path, line) from None
    except RecursionError:
        raise DataError("invalid YAML: nested too deep", path) from None

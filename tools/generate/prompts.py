"""Reading what to make: prompts from a text, CSV or JSONL file, and seeds from ``0-7`` or ``1,5,9``.

Every mistake is an :class:`InputError` that names the file, the line and the value, raised before any work.

- text (any other suffix): one prompt per line; blank lines and lines starting with ``#`` are skipped.
- CSV (``.csv``): a header row, then one row per prompt. The column ``prompt`` (``--prompt-key``) is required;
  ``negative_prompt`` and ``seeds`` (a seed list such as ``0-3``) are optional.
- JSONL (``.jsonl``, ``.ndjson``): one JSON object per line with the same keys; ``seeds`` may also be a number
  or a list of numbers.

Example:
    >>> parse_seeds("0-3,10")
    [0, 1, 2, 3, 10]
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 2**64 - 1; get_inputs adds to a seed
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class InputError(ValueError):
    """A prompts file, seed list or option that cannot be used; the message says where and what would work."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt of the file: where it is (``prompts.csv:4``), its text, and its own seeds if it has any."""

    source: str
    prompt: str
    negative_prompt: str | None = None
    seeds: tuple[int, ...] | None = None


def _seed(word: str, where: str) -> int:
    try:
        value = int(word)
    except ValueError:
        raise InputError(f"{where}: {word!r} is not a seed; seeds are whole numbers, e.g. 0-7 or 1,5,9") from None
    if not 0 <= value <= MAX_SEED:
        raise InputError(f"{where}: seed {value} is out of range; seeds go from 0 to {MAX_SEED}")
    return value


def parse_seeds(spec: str | int | list, where: str = "--seeds") -> list[int]:
    """Seeds from ``"0-7"``, ``"1,5,9"``, ``"0-3,10"``, a number or a list of numbers; repeats are dropped.

    Args:
        spec: the seed list.
        where: what to name in an error (``--seeds``, or ``prompts.csv, line 4``).

    Example:
        >>> parse_seeds("5-2")
        Traceback (most recent call last):
        ...
        tools.generate.prompts.InputError: --seeds: the range '5-2' runs backwards; write 2-5
    """
    if isinstance(spec, bool):
        raise InputError(f"{where}: {spec!r} is not a seed list; write e.g. 0-7 or 1,5,9")
    if isinstance(spec, int):
        return [_seed(str(spec), where)]
    if isinstance(spec, list):
        words = [str(s) if isinstance(s, int) and not isinstance(s, bool) else repr(s) for s in spec]
    elif isinstance(spec, str):
        words = [w.strip() for w in spec.split(",")]
    else:
        raise InputError(f"{where}: {spec!r} is not a seed list; write e.g. 0-7 or 1,5,9")
    seeds: list[int] = []
    for word in words:
        if not word:
            raise InputError(f"{where}: {spec!r} has an empty entry; write e.g. 0-7 or 1,5,9")
        first, dash, last = word.partition("-")
        if dash and first.strip():  # "a-b" (a leading "-" is a negative number, refused by _seed)
            start, stop = _seed(first.strip(), where), _seed(last.strip(), where)
            if stop < start:
                raise InputError(f"{where}: the range {word!r} runs backwards; write {stop}-{start}")
            seeds.extend(range(start, stop + 1))
        else:
            seeds.append(_seed(word, where))
    if not seeds:
        raise InputError(f"{where}: {spec!r} holds no seed; write e.g. 0-7 or 1,5,9")
    return list(dict.fromkeys(seeds))


def _shown(line: str) -> str:
    """A line as an error message quotes it: stripped, at most 80 characters."""
    line = line.strip()
    return line if len(line) <= 80 else line[:77] + "..."


def _where(path: Path, line: int) -> str:
    return f"{path}, line {line}"


def _text(value, key: str, where: str, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InputError(f"{where}: the {key!r} is empty; every row needs a prompt")
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: {key!r} must be text, got {value!r}")
    return value.strip()


def _row(record: dict, path: Path, line: int, keys: dict[str, str]) -> PromptRow:
    where = _where(path, line)
    if keys["prompt"] not in record:
        raise InputError(f"{where}: no {keys['prompt']!r} in {sorted(record)}; name the prompt's key with --prompt-key")
    seeds = record.get(keys["seeds"])
    if isinstance(seeds, str) and not seeds.strip():
        seeds = None
    return PromptRow(
        source=f"{path.name}:{line}",
        prompt=_text(record[keys["prompt"]], keys["prompt"], where, required=True),
        negative_prompt=_text(record.get(keys["negative_prompt"]), keys["negative_prompt"], where, required=False),
        seeds=None if seeds is None else tuple(parse_seeds(seeds, f"{where}, {keys['seeds']!r}")),
    )


def _read_text(path: Path, lines: list[str], keys: dict[str, str]) -> list[PromptRow]:
    rows = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            rows.append(PromptRow(source=f"{path.name}:{number}", prompt=text))
    return rows


def _read_jsonl(path: Path, lines: list[str], keys: dict[str, str]) -> list[PromptRow]:
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{_where(path, number)}: not a JSON object ({err.msg}, column {err.colno}): {_shown(line)!r}; "
                f'each line must be like {{"{keys["prompt"]}": "a red fox", "seeds": "0-3"}}'
            ) from None
        if not isinstance(record, dict):
            raise InputError(f'{_where(path, number)}: {record!r} is not a JSON object; write {{"prompt": ...}}')
        rows.append(_row(record, path, number, keys))
    return rows


def _read_csv(path: Path, lines: list[str], keys: dict[str, str]) -> list[PromptRow]:
    reader = csv.reader(lines, strict=True)
    rows = []
    try:
        header = next(reader, None)
        if header is None:
            return rows
        header = [name.strip() for name in header]
        if keys["prompt"] not in header:
            raise InputError(
                f"{_where(path, 1)}: the header {header} has no {keys['prompt']!r} column; "
                f"name the prompt's column with --prompt-key, or add a header row such as 'prompt,seeds'"
            )
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise InputError(
                    f"{_where(path, line)}: {len(fields)} fields where the header has {len(header)} "
                    f"({', '.join(header)}): {fields!r}; quote a prompt that holds a comma"
                )
            rows.append(_row(dict(zip(header, fields, strict=True)), path, line, keys))
    except csv.Error as err:
        line = max(reader.line_num, 1)
        shown = _shown(lines[line - 1]) if line <= len(lines) else ""
        raise InputError(f"{_where(path, line)}: not valid CSV ({err}): {shown!r}; check its quotes") from None
    return rows


def read_prompts(
    path: str | Path,
    prompt_key: str = "prompt",
    negative_prompt_key: str = "negative_prompt",
    seeds_key: str = "seeds",
) -> list[PromptRow]:
    """The prompts of a text, CSV or JSONL file (by its suffix), in file order.

    Raises:
        InputError: a missing or empty file, or a malformed line (the message names the file, line and value).
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not there"
        raise InputError(f"--prompts {path}: {what}; give a .txt, .csv or .jsonl file of prompts")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputError(f"{_where(path, line)}: not UTF-8 text; save the file as UTF-8") from None
    keys = {"prompt": prompt_key, "negative_prompt": negative_prompt_key, "seeds": seeds_key}
    suffix = path.suffix.lower()
    reader = _read_csv if suffix in CSV_SUFFIXES else _read_jsonl if suffix in JSONL_SUFFIXES else _read_text
    lines = text.splitlines(keepends=reader is _read_csv)
    rows = reader(path, lines, keys)
    if not rows:
        raise InputError(f"--prompts {path}: the file holds no prompt; write one prompt per line (or row)")
    return rows

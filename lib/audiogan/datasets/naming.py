"""Labels from file names: a regular expression with named groups, matched against each file's name.

A corpus that puts what a recording is in its file name (the Free Spoken Digit Dataset:
``7_jackson_32.wav``, the digit, the speaker and the take) needs no other metadata. A
:class:`NamePattern` turns each name into labels (every named group but ``index``), picks the class
label (``digit``, ``word``, ``label`` or ``class``, the first present) and, where the corpus has an
official split, the split: from a ``split`` group, or from the take number for FSDD (takes 0-4 are
its test set). ``FSDD`` is the pattern of that corpus; any other comes from ``name_pattern=``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from audiogan.errors import ConfigError

CLASS_GROUPS = ("digit", "word", "label", "class")
FSDD_PREFIX = "fsdd:"


@dataclasses.dataclass(frozen=True)
class NamePattern:
    """``regex`` is matched in full against each file's stem (its name without the extension);
    ``test_below`` sends takes (the ``index`` group) below it to the test split, the rest to train."""

    regex: str
    test_below: int | None = None

    def __post_init__(self):
        try:
            compiled = re.compile(self.regex)
        except re.error as exc:
            raise ConfigError(f"name_pattern={self.regex!r} is not a regular expression ({exc}).") from exc
        if not compiled.groupindex:
            raise ConfigError(
                f"name_pattern={self.regex!r} has no named group; name what each part of a file name is, "
                r"e.g. '(?P<digit>\d)_(?P<speaker>[a-z]+)_(?P<index>\d+)'."
            )
        if self.test_below is not None and "index" not in compiled.groupindex:
            raise ConfigError(f"name_pattern={self.regex!r} needs an 'index' group to split by take.")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(re.compile(self.regex).groupindex)

    def match(self, path: str | Path) -> dict[str, str] | None:
        """The named groups of ``path``'s stem, or None when it does not match in full."""
        found = re.fullmatch(self.regex, Path(path).stem)
        return None if found is None else {k: v for k, v in found.groupdict().items() if v is not None}

    def labels(self, files: list[str | Path]) -> tuple[dict[str, np.ndarray], list[int]]:
        """Per-file label arrays for the files that match, and the indices of those that do not.

        Numeric class labels (digits) become int32; ``split`` comes from its group or the take."""
        rows, unmatched = [], []
        for i, path in enumerate(files):
            found = self.match(path)
            (unmatched.append(i) if found is None else rows.append(found))
        if not rows:
            return {}, unmatched
        names = [g for g in self.groups if g != "index" and all(g in r for r in rows)]
        labels = {}
        for name in names:
            values = [r[name] for r in rows]
            is_number = name in CLASS_GROUPS and all(v.isdigit() for v in values)
            labels[name] = np.asarray([int(v) for v in values] if is_number else values,
                                      np.int32 if is_number else None)
        if self.test_below is not None:
            labels["split"] = np.asarray(["test" if int(r["index"]) < self.test_below else "train" for r in rows])
        return labels, unmatched


# The Free Spoken Digit Dataset: recordings/{digit}_{speaker}_{index}.wav, takes 0-4 the test set.
FSDD = NamePattern(r"(?P<digit>\d)_(?P<speaker>[a-z]+)_(?P<index>\d+)", test_below=5)


def detect(files: list[Path]) -> NamePattern | None:
    """FSDD's pattern when every file is named that way (at least ten files), else None."""
    if len(files) >= 10 and all(FSDD.match(f) for f in files):
        return FSDD
    return None

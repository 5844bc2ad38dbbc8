"""A recipe's training protocol as data: every value with the source it comes from.

A recipe lists its protocol as `ProtocolValue` rows (`Recipe.protocol_rows`); its constructor
reads its hyperparameters from them (`Protocol[name]`, `Protocol.section("lerac")`), and
`kc-recipes --recipe NAME --print-protocol` prints the same rows, so the table and the code
cannot drift. Two variants: `paper` (the default: the paper's value, and where the paper is
silent, the authors' code) and `official` (the authors' code wherever the two differ); a row
that differs carries its `official` value and source.

Sources are written in one of these forms (`check_source`), several joined by "; ":

- a paper location: `Table 1`, `Sec. 4.2`, `Eq. 8`, `Alg. 1 l. 5-7`, optionally prefixed by
  the paper (`LeRaC Eq. 8`, `DoCL Sec. 4`);
- a line of the authors' code: `owner/repo path:line` (`:a-b` for a range; further lines of
  the same repository as `, path:line` or `, :line` for the same file);
- `not given; chosen: X, because Y` for a value no source gives;
- `set by the user` for a value passed to the recipe (`--set NAME=VALUE`).

The stored copies of the papers could not be read past their introductions
(docs/protocol_sources.md): a paper location is the place the issue tracker or DESIGN.md quotes
the value from, not checked here, and tables mark it so (`PAPER_NOTE`).
"""

import dataclasses
import re
from collections.abc import Mapping

PROTOCOLS = ("paper", "official")
USER_SOURCE = "set by the user"
PAPER_NOTE = (
    "paper locations (Table, Sec., Eq., Alg.) are as quoted by issue 13 and "
    "DESIGN.md: the stored paper texts end at their introductions, so they were not "
    "checked here (docs/protocol_sources.md)"
)

_PAPER = (
    r"(?:(?:LeRaC|CBS|DoCL|ET|ET\+\+|SepTr) )?"
    r"(?:Table \d+|Sec\. \d+(?:\.\d+)*|Eq\. \d+|Alg\. \d+ l\. \d+(?:-\d+)?)"
)
_LINES = r":\d+(?:-\d+)?"
_PATH = r"[\w.][\w./-]*"
_CODE = rf"[\w.-]+/[\w.-]+ {_PATH}{_LINES}(?:, (?:{_PATH})?{_LINES})*"
_NOT_GIVEN = r"not given; chosen: .+, because .+"
_ONE_SOURCE = re.compile(rf"(?:{_PAPER}|{_CODE}|{re.escape(USER_SOURCE)})")
_NOT_GIVEN_RE = re.compile(_NOT_GIVEN, re.DOTALL)
_PAPER_RE = re.compile(_PAPER)


class _Same:
    def __repr__(self):
        return "SAME"


SAME = _Same()  # `official` of a row where the authors' code agrees with the paper


def check_source(source):
    """Raises ValueError unless `source` is in one of the fixed forms (module docstring)."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"`source` must be a non-empty string. Received: source={source!r}")
    if _NOT_GIVEN_RE.fullmatch(source):
        return source
    if all(_ONE_SOURCE.fullmatch(part) for part in source.split("; ")):
        return source
    raise ValueError(
        "`source` must be `Table N`, `Sec. N.N`, `Eq. N`, `Alg. N l. a-b` (optionally after the "
        "paper's name), `owner/repo path:line`, several of them joined by '; ', or "
        f"'not given; chosen: X, because Y'. Received: source={source!r}"
    )


def cites_paper(source):
    """Whether `source` names a location in a paper (as opposed to code or a choice)."""
    return not _NOT_GIVEN_RE.fullmatch(source) and bool(_PAPER_RE.search(source))


@dataclasses.dataclass(frozen=True)
class ProtocolValue:
    """One value of a protocol and its source.

    Args:
        name: the row's name. `section.key` names (e.g. `lerac.duration`) are keyword
            arguments of the package object of that section (`Protocol.section`).
        value: the value the recipe uses under the `paper` protocol.
        source: where it comes from, in a fixed form (`check_source`).
        official: the value of the authors' code where it differs (default `SAME`).
        official_source: its source; required when `official` is given.
        note: a short remark for the table (a conversion, what the code does beyond it).
    """

    name: str
    value: object
    source: str
    official: object = SAME
    official_source: str = None
    note: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`name` must be a non-empty string. Received: name={self.name!r}")
        check_source(self.source)
        if self.official is SAME:
            if self.official_source is not None:
                raise ValueError(f"Row {self.name!r}: `official_source` without `official`.")
        else:
            if self.official_source is None:
                raise ValueError(f"Row {self.name!r}: `official` needs an `official_source`.")
            check_source(self.official_source)

    @property
    def differs(self):
        return self.official is not SAME

    def resolved(self, protocol):
        """`(value, source)` under `protocol`."""
        if protocol == "official" and self.differs:
            return self.official, self.official_source
        return self.value, self.source


def lerac_update_row(official_source, note=""):
    """LeRaC's rise: the paper's exponential (Eq. 8), the authors' x c steps under `official`."""
    return ProtocolValue(
        "lerac.update",
        "exponential",
        "LeRaC Eq. 8",
        official="stepwise",
        official_source=official_source,
        note=note,
    )


def check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {PROTOCOLS}. Received: protocol={protocol!r}")
    return protocol


def format_value(value):
    """The table text of a value: booleans as yes / no, sequences joined, floats as %g."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


class Protocol(Mapping):
    """The rows of a protocol under one variant: a read-only mapping from name to value.

    Args:
        rows: list of `ProtocolValue`, names unique.
        protocol: `"paper"` or `"official"`.
        title: the table's heading.
    """

    def __init__(self, rows, protocol="paper", title=""):
        self.protocol = check_protocol(protocol)
        self.title = title
        self.rows = list(rows)
        names = [row.name for row in self.rows]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Protocol rows must have unique names. Repeated: {duplicates}")
        self._rows = {row.name: row for row in self.rows}

    def __getitem__(self, name):
        if name not in self._rows:
            raise KeyError(f"The protocol has no row {name!r}. Rows: {list(self._rows)}")
        return self._rows[name].resolved(self.protocol)[0]

    def __iter__(self):
        return iter(self._rows)

    def __len__(self):
        return len(self._rows)

    def source(self, name):
        return self._rows[name].resolved(self.protocol)[1]

    def section(self, prefix):
        """`{key: value}` of the rows named `prefix.key`: keyword arguments of one object."""
        start = prefix + "."
        return {name[len(start) :]: self[name] for name in self if name.startswith(start)}

    def overridden(self, **values):
        """A copy where each `name=value` not None replaces that row's value, sourced
        `set by the user` (and the same under both variants)."""
        unknown = sorted(set(values) - set(self._rows))
        if unknown:
            raise KeyError(f"The protocol has no rows {unknown}. Rows: {list(self._rows)}")
        rows = [
            ProtocolValue(row.name, values[row.name], USER_SOURCE, note=row.note)
            if values.get(row.name) is not None
            else row
            for row in self.rows
        ]
        return Protocol(rows, self.protocol, self.title)

    def table(self):
        """The protocol as a markdown table: one row per value, with its source."""
        lines = [
            f"{self.title} ({self.protocol} protocol)"
            if self.title
            else f"{self.protocol} protocol",
            "",
            "| value | setting | source | note |",
            "|---|---|---|---|",
        ]
        for row in self.rows:
            value, source = row.resolved(self.protocol)
            note = row.note
            if row.differs:
                other = "paper" if self.protocol == "official" else "official"
                other_value, other_source = row.resolved(other)
                note = f"{other}: {format_value(other_value)} ({other_source})" + (
                    f"; {note}" if note else ""
                )
            lines.append(
                f"| {_cell(row.name)} | {_cell(format_value(value))} | "
                f"{_cell(source)} | {_cell(note)} |"
            )
        lines += ["", f"Note: {PAPER_NOTE}."]
        return "\n".join(lines) + "\n"

"""Parse and validate ICAO Doc 9303 machine readable zones (MRZ), with no I/O.

Five formats are read, told apart by the shape of the text and the document code:

========  =============  ====================================
format    lines x chars  document code (first character)
========  =============  ====================================
``TD1``   3 x 30         ``A``, ``C`` or ``I`` (identity cards);
                         never ``V`` second (kept for visas)
``TD2``   2 x 36         ``A``, ``C`` or ``I``
``TD3``   2 x 44         ``P`` (passports)
``MRVA``  2 x 44         ``V`` (full-size visa sticker)
``MRVB``  2 x 36         ``V`` (smaller visa sticker)
========  =============  ====================================

Conventions of :func:`parse_mrz`:

- Lines are separated by ``\\n``, ``\\r\\n`` or ``\\r``; whitespace around each line and
  blank lines before the first or after the last line are ignored. Nothing else is forgiven
  or corrected: a lowercase letter, an ``O`` for a ``0`` or a space inside a line is an
  error, never silently repaired.
- Codes, numbers and optional data are returned without the ``<`` fillers at their ends
  (``"D<<"`` is ``"D"``); fillers inside a field are kept as written.
- Names split at the first ``<<`` into surname and given names; within each, the components
  (separated by ``<``) are joined by one space. A name without ``<<`` is all surname.
  :func:`normalise_name` and :func:`mrz_name_forms` give names from other sources the same
  shape, for comparing them with what this parser returns.
- Dates: the expiry year ``YY`` is 20YY; the birth year is the latest century that does not
  put the birth date after ``today``. ICAO lets a whole two-character block (``YY``, ``MM``
  or ``DD``) be unknown, written ``<<``: such a date is returned as ``None`` (the blocks
  that are known must still be possible), and its check digit is accepted either as
  computed over the field as written (``<`` counting 0) or as ``<``. A lone ``<`` inside a
  block (``8<``, ``<5``) is ``invalid_date``; the same holds for birth and expiry dates.
- Sex ``M`` and ``F`` are returned as they are; the filler ``<`` (unspecified, the ICAO
  form) and a literal ``X`` (printed by some states since the 8th edition) both become ``"X"``.
- Check digits (7-3-1 weighting, see :func:`check_digit`) are verified for the document
  number, birth date and expiry date in every format, for the optional data (personal
  number) in TD3, and the composite check digit in TD1, TD2 and TD3. Visas (MRV-A, MRV-B)
  have neither a composite nor an optional-data check digit.
- TD1 and TD2 may carry a document number longer than 9 characters: the document number
  field holds its first 9 characters, its check digit position holds ``<``, and the rest of
  the number followed by its check digit opens the optional data field, ended by a ``<``.
  The full number is returned and its check digit verified over the full number; the
  optional data is what follows that ``<``.

Errors are :class:`MRZError` with a ``field`` and a ``reason`` (see :data:`Field` and
:data:`Reason`). Checks run in this order, and the first failure is raised: line count,
line lengths, the character set over every position (so a bad character is reported
before any check digit it spoils), then the fields in reading order (document code,
issuing state, name, nationality, birth date, sex, expiry date), then the check digits
(document number, birth date, expiry date, optional data, composite). A wrong calendar
date is therefore ``invalid_date`` even when its check digit was not recomputed.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

__all__ = [
    "MRZ",
    "Field",
    "Format",
    "MRZError",
    "Reason",
    "Sex",
    "check_digit",
    "format_td3",
    "mrz_name_forms",
    "normalise_name",
    "parse_mrz",
]

Format = Literal["TD1", "TD2", "TD3", "MRVA", "MRVB"]
Sex = Literal["M", "F", "X"]
Field = Literal[
    "format",
    "document_code",
    "issuing_state",
    "name",
    "document_number",
    "nationality",
    "birth_date",
    "sex",
    "expiry_date",
    "optional_data",
    "composite",
]
Reason = Literal[
    "invalid_line_count",
    "invalid_length",
    "invalid_character",
    "lowercase_character",
    "check_digit_mismatch",
    "invalid_date",
    "invalid_sex",
    "invalid_document_code",
]

FILLER: Final = "<"
_DIGITS: Final = "0123456789"
_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CHARSET: Final = frozenset(_DIGITS + _LETTERS + FILLER)
# Digits keep their value, A..Z are 10..35 and the filler is 0 (Doc 9303 Part 3).
_VALUES: Final = {c: i for i, c in enumerate(_DIGITS + _LETTERS)} | {FILLER: 0}
_WEIGHTS: Final = (7, 3, 1)
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


class MRZError(Exception):
    """An MRZ that cannot be read or fails validation.

    ``field`` names the part of the MRZ at fault (``"format"`` for the overall shape,
    ``"composite"`` for the composite check digit) and ``reason`` says what is wrong; both
    are stable codes for callers. ``detail`` is a sentence for people; it gives positions
    (1-based line and column) and check digits, never the holder's data.
    """

    def __init__(self, field: Field, reason: Reason, detail: str) -> None:
        super().__init__(field, reason, detail)
        self.field: Field = field
        self.reason: Reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"invalid MRZ: {self.detail} (field {self.field}, reason {self.reason})"


@dataclass(frozen=True, slots=True)
class MRZ:
    """The fields of a valid machine readable zone.

    ``optional_data`` is the issuing state's optional data without end fillers. TD1 has two
    such fields, after the document number on line 1 and after the nationality on line 2:
    they are also given apart as ``optional_data_1`` and ``optional_data_2``, and
    ``optional_data`` joins those that are not empty with one space (a character no MRZ
    holds, so the join cannot be mistaken for content). For the other formats
    ``optional_data_1`` equals ``optional_data`` and ``optional_data_2`` is ``""``. In TD3
    the optional data is the personal number.
    """

    format: Format
    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: date | None
    sex: Sex
    expiry_date: date | None
    optional_data: str
    optional_data_1: str
    optional_data_2: str


def check_digit(s: str) -> str:
    """The ICAO 9303 check digit of ``s`` as one character ``"0"``..``"9"``.

    Each character is valued (``0``-``9`` as themselves, ``A``-``Z`` as 10-35, ``<`` as 0),
    weighted 7, 3, 1, 7, 3, 1, ... from the left, and the sum taken modulo 10.
    Raises ``ValueError`` for any other character, lowercase letters included.
    """
    total = 0
    for i, c in enumerate(s):
        value = _VALUES.get(c)
        if value is None:
            raise ValueError(f"{c!r} at position {i + 1} is not an MRZ character")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


def _filled(value: str, width: int) -> str:
    return value.upper().replace(" ", "<").ljust(width, "<")[:width]


def _yymmdd(day: date | None) -> str:
    return day.strftime("%y%m%d") if day else "<<<<<<"


def format_td3(
    *,
    surname: str,
    given_names: str,
    document_number: str,
    issuing_state: str,
    nationality: str,
    birth_date: date | None,
    sex: str,
    expiry_date: date,
    optional_data: str = "",
) -> str:
    """Compose a passport MRZ (TD3: two lines of 44), every check digit computed: for
    demos, tests and issuing systems. Values are upper-cased, spaces become fillers, and
    fields are cut to their width; the result parses back with :func:`parse_mrz`."""
    name = _filled(f"{surname}<<{given_names.replace(' ', '<')}", 39)
    number = _filled(document_number, 9)
    personal = _filled(optional_data, 14)
    birth, expiry = _yymmdd(birth_date), _yymmdd(expiry_date)
    body = (
        number
        + check_digit(number)
        + _filled(nationality, 3)
        + birth
        + check_digit(birth)
        + ("<" if sex == "X" else sex)
        + expiry
        + check_digit(expiry)
        + personal
        + (check_digit(personal) if optional_data else "<")
    )
    composite = body[0:10] + body[13:20] + body[21:43]
    return f"P<{_filled(issuing_state, 3)}{name}\n{body}{check_digit(composite)}"


@dataclass(frozen=True, slots=True)
class _Span:
    """Columns ``start`` up to ``stop`` (0-based, end excluded) of line ``line``."""

    line: int
    start: int
    stop: int

    def read(self, lines: list[str]) -> str:
        return lines[self.line][self.start : self.stop]

    def at(self) -> str:
        return f"line {self.line + 1}, column {self.start + 1}"


def _one(line: int, column: int) -> _Span:
    return _Span(line, column, column + 1)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each field of one format lies (Doc 9303 Parts 4 to 7)."""

    format: Format
    width: int
    codes: str  # allowed first characters of the document code
    barred_second: str  # characters the document code may not have in second position
    document_code: _Span
    issuing_state: _Span
    name: _Span
    document_number: _Span
    document_number_check: _Span
    nationality: _Span
    birth_date: _Span
    birth_date_check: _Span
    sex: _Span
    expiry_date: _Span
    expiry_date_check: _Span
    optional_data: tuple[_Span, ...]
    optional_data_check: _Span | None
    composite: tuple[_Span, ...]
    composite_check: _Span | None
    long_number: bool  # the number may overflow into optional_data[0] (TD1, TD2)

    def fields(self) -> list[tuple[Field, _Span]]:
        """Every position of the zone, each with the field it belongs to."""
        spans: list[tuple[Field, _Span | None]] = [
            ("document_code", self.document_code),
            ("issuing_state", self.issuing_state),
            ("name", self.name),
            ("document_number", self.document_number),
            ("document_number", self.document_number_check),
            ("nationality", self.nationality),
            ("birth_date", self.birth_date),
            ("birth_date", self.birth_date_check),
            ("sex", self.sex),
            ("expiry_date", self.expiry_date),
            ("expiry_date", self.expiry_date_check),
            *(("optional_data", span) for span in self.optional_data),
            ("optional_data", self.optional_data_check),
            ("composite", self.composite_check),
        ]
        return [(field, span) for field, span in spans if span is not None]


def _two_line(fmt: Format, width: int, codes: str) -> _Layout:
    """TD2, TD3 and the visas share line 1 and the start of line 2; they differ from
    column 29 of line 2 on: the optional data and, except for visas, check digits."""
    checked = fmt in ("TD2", "TD3")
    has_personal_check = fmt == "TD3"
    optional_stop = width - (1 if checked else 0) - (1 if has_personal_check else 0)
    return _Layout(
        format=fmt,
        width=width,
        codes=codes,
        barred_second="",
        document_code=_Span(0, 0, 2),
        issuing_state=_Span(0, 2, 5),
        name=_Span(0, 5, width),
        document_number=_Span(1, 0, 9),
        document_number_check=_one(1, 9),
        nationality=_Span(1, 10, 13),
        birth_date=_Span(1, 13, 19),
        birth_date_check=_one(1, 19),
        sex=_one(1, 20),
        expiry_date=_Span(1, 21, 27),
        expiry_date_check=_one(1, 27),
        optional_data=(_Span(1, 28, optional_stop),),
        optional_data_check=_one(1, optional_stop) if has_personal_check else None,
        composite=(_Span(1, 0, 10), _Span(1, 13, 20), _Span(1, 21, width - 1)) if checked else (),
        composite_check=_one(1, width - 1) if checked else None,
        long_number=fmt == "TD2",
    )


_TD1: Final = _Layout(
    format="TD1",
    width=30,
    codes="ACI",
    # Doc 9303 Part 5: V in second position is reserved for visas, which are never TD1.
    barred_second="V",
    document_code=_Span(0, 0, 2),
    issuing_state=_Span(0, 2, 5),
    document_number=_Span(0, 5, 14),
    document_number_check=_one(0, 14),
    birth_date=_Span(1, 0, 6),
    birth_date_check=_one(1, 6),
    sex=_one(1, 7),
    expiry_date=_Span(1, 8, 14),
    expiry_date_check=_one(1, 14),
    nationality=_Span(1, 15, 18),
    optional_data=(_Span(0, 15, 30), _Span(1, 18, 29)),
    optional_data_check=None,
    composite=(_Span(0, 5, 30), _Span(1, 0, 7), _Span(1, 8, 15), _Span(1, 18, 29)),
    composite_check=_one(1, 29),
    name=_Span(2, 0, 30),
    long_number=True,
)
_TD2: Final = _two_line("TD2", 36, "ACI")
_TD3: Final = _two_line("TD3", 44, "P")
_MRVA: Final = _two_line("MRVA", 44, "V")
_MRVB: Final = _two_line("MRVB", 36, "V")


def parse_mrz(text: str, *, today: date | None = None) -> MRZ:
    """Read and validate the MRZ in ``text`` (its 2 or 3 lines separated by newlines).

    ``today`` (default: the local date) only decides the century of the birth date.
    Returns an :class:`MRZ`; raises :class:`MRZError` for any defect (see the module
    docstring for the conventions and the order of the checks).
    """
    lines = _lines(text)
    layout = _layout(lines)
    _check_characters(layout, lines)

    code = layout.document_code.read(lines)
    if code[0] not in layout.codes or code[1] not in _LETTERS + FILLER:
        raise MRZError(
            "document_code",
            "invalid_document_code",
            f"a {layout.format} document code starts with one of {', '.join(layout.codes)}"
            " followed by a letter or '<'",
        )
    if code[1] in layout.barred_second:
        raise MRZError(
            "document_code",
            "invalid_document_code",
            f"a {layout.format} document code never has {code[1]} in second position"
            " (it marks a visa)",
        )
    issuing_state = _state(layout.issuing_state, lines, "issuing_state")
    surname, given_names = _name(layout.name, lines)
    nationality = _state(layout.nationality, lines, "nationality")
    birth_date = _date(layout.birth_date, lines, "birth_date", today or date.today())
    sex = _sex(layout.sex, lines)
    expiry_date = _date(layout.expiry_date, lines, "expiry_date", None)

    number_field = layout.document_number.read(lines)
    number_check = layout.document_number_check.read(lines)
    optional = [span.read(lines) for span in layout.optional_data]
    number_at = layout.document_number_check.at()
    if layout.long_number and number_check == FILLER and FILLER not in number_field:
        # The long form: the overflow and its check digit lead the first optional field.
        overflow, _, rest = optional[0].partition(FILLER)
        if len(overflow) < 2:
            raise MRZError(
                "document_number",
                "check_digit_mismatch",
                f"{layout.document_number_check.at()}: check digit '<' without the rest of a"
                " long document number and its check digit in the optional data",
            )
        number_field, number_check = number_field + overflow[:-1], overflow[-1]
        optional[0] = rest
        first = layout.optional_data[0]
        number_at = _one(first.line, first.start + len(overflow) - 1).at()
    _verify("document_number", number_field, number_check, number_at)
    _verify_date(layout.birth_date, layout.birth_date_check, lines, "birth_date")
    _verify_date(layout.expiry_date, layout.expiry_date_check, lines, "expiry_date")
    if layout.optional_data_check is not None:
        personal = layout.optional_data[0].read(lines)
        written = layout.optional_data_check.read(lines)
        # A personal number left blank may have '<' for its check digit (Doc 9303 Part 4).
        if not (written == FILLER and personal == FILLER * len(personal)):
            _verify("optional_data", personal, written, layout.optional_data_check.at())
    if layout.composite_check is not None:
        covered = "".join(span.read(lines) for span in layout.composite)
        check = layout.composite_check
        _verify("composite", covered, check.read(lines), check.at())

    parts = [part.strip(FILLER) for part in optional]
    return MRZ(
        format=layout.format,
        document_code=code.strip(FILLER),
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=number_field.strip(FILLER),
        nationality=nationality,
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=" ".join(part for part in parts if part),
        optional_data_1=parts[0],
        optional_data_2=parts[1] if len(parts) > 1 else "",
    )


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in _LINE_BREAK.split(text)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _layout(lines: list[str]) -> _Layout:
    if len(lines) not in (2, 3):
        raise MRZError(
            "format",
            "invalid_line_count",
            f"an MRZ has 2 or 3 lines, this text has {len(lines)}",
        )
    widths = sorted({len(line) for line in lines})
    if len(widths) > 1:
        raise MRZError(
            "format",
            "invalid_length",
            f"the lines differ in length ({', '.join(str(len(line)) for line in lines)})",
        )
    width = widths[0]
    if len(lines) == 3:
        if width == _TD1.width:
            return _TD1
        expected = f"3 lines of {_TD1.width}"
    else:
        # The document code picks between the two layouts of each width; any first letter
        # other than V is read as TD2/TD3 so that it fails as a document code, not a format.
        is_visa = lines[0][0] == "V"
        if width == _TD3.width:
            return _MRVA if is_visa else _TD3
        if width == _TD2.width:
            return _MRVB if is_visa else _TD2
        expected = f"2 lines of {_TD2.width} or {_TD3.width}"
    raise MRZError(
        "format",
        "invalid_length",
        f"{len(lines)} lines of {width} characters; an MRZ has {expected} characters",
    )


def _check_characters(layout: _Layout, lines: list[str]) -> None:
    for field, span in layout.fields():
        for column, c in enumerate(span.read(lines), start=span.start):
            if c in _CHARSET:
                continue
            where = f"line {span.line + 1}, column {column + 1}"
            if "a" <= c <= "z":
                raise MRZError(field, "lowercase_character", f"{where} holds a lowercase letter")
            raise MRZError(
                field,
                "invalid_character",
                f"{where} holds U+{ord(c):04X}; an MRZ holds only A-Z, 0-9 and '<'",
            )


def _state(span: _Span, lines: list[str], field: Field) -> str:
    """An issuing state or nationality code: letters and fillers, not checked against a
    list of states (Doc 9303 adds codes such as D, GBD, UNO and XXA to ISO 3166)."""
    code = span.read(lines)
    for column, c in enumerate(code, start=span.start):
        if c not in _LETTERS and c != FILLER:
            raise MRZError(
                field,
                "invalid_character",
                f"line {span.line + 1}, column {column + 1}: a state code holds only A-Z and '<'",
            )
    return code.strip(FILLER)


def _name(span: _Span, lines: list[str]) -> tuple[str, str]:
    raw = span.read(lines)
    for column, c in enumerate(raw, start=span.start):
        if c in _DIGITS:
            raise MRZError(
                "name",
                "invalid_character",
                f"line {span.line + 1}, column {column + 1}: a name holds only A-Z and '<'",
            )
    return _split_name(raw)


def _split_name(raw: str) -> tuple[str, str]:
    """Surname and given names of a name field as written (fillers included, perhaps cut
    short): split at the first ``<<``, the components of each joined by one space."""
    surname, _, given = raw.partition(FILLER * 2)

    def words(part: str) -> str:
        return " ".join(word for word in part.split(FILLER) if word)

    return words(surname), words(given)


def _date(span: _Span, lines: list[str], field: Field, today: date | None) -> date | None:
    """The date in ``span``: 20YY for an expiry (``today`` None), or for a birth the latest
    century that keeps it on or before ``today``; ``None`` when a whole block is ``<<``."""
    raw = span.read(lines)
    where = span.at()
    if any(c not in _DIGITS and c != FILLER for c in raw):
        raise MRZError(field, "invalid_date", f"{where}: a date holds only digits or '<'")
    yy, mm, dd = raw[0:2], raw[2:4], raw[4:6]
    unknown = FILLER * 2
    if any(FILLER in block and block != unknown for block in (yy, mm, dd)):
        # Doc 9303 Part 3 marks an unknown year, month or day as a whole block of fillers;
        # "8<" is half a number, a misprint or a misread, not an unknown.
        raise MRZError(
            field,
            "invalid_date",
            f"{where}: only a whole year, month or day may be unknown ('<<'), not one digit",
        )
    if FILLER in raw:
        # Unknown in part: the parts that are known must still be possible.
        month = None if mm == unknown else int(mm)
        day = None if dd == unknown else int(dd)
        if month is not None and not 1 <= month <= 12:
            raise MRZError(field, "invalid_date", f"{where}: the month is not 01 to 12")
        # 2000 is a leap year, so 29 February stays possible while the year is unknown.
        longest = 31 if month is None else calendar.monthrange(2000, month)[1]
        if day is not None and not 1 <= day <= longest:
            raise MRZError(field, "invalid_date", f"{where}: no such day in the month")
        return None
    if today is None:
        years = [2000 + int(yy)]
    else:
        # Latest century first: this century, then the one before.
        century = today.year // 100 * 100
        years = [century + int(yy), century - 100 + int(yy)]
    for year in years:
        try:
            candidate = date(year, int(mm), int(dd))
        except ValueError:
            continue
        if today is None or candidate <= today:
            return candidate
    raise MRZError(field, "invalid_date", f"{where}: not a calendar date")


def _sex(span: _Span, lines: list[str]) -> Sex:
    c = span.read(lines)
    if c == "M":
        return "M"
    if c == "F":
        return "F"
    if c in ("X", FILLER):
        return "X"
    raise MRZError("sex", "invalid_sex", f"{span.at()}: sex is M, F, X or '<'")


def _verify(field: Field, value: str, written: str, where: str) -> None:
    expected = check_digit(value)
    if written != expected:
        raise MRZError(
            field,
            "check_digit_mismatch",
            f"{where}: check digit {written!r} does not match {expected!r}",
        )


def _verify_date(span: _Span, check: _Span, lines: list[str], field: Field) -> None:
    raw, written = span.read(lines), check.read(lines)
    # An unknown date may have '<' for its check digit as well as the computed one.
    if FILLER in raw and written == FILLER:
        return
    _verify(field, raw, written, check.at())


# Letters that Unicode does not split into a base letter and a mark, written out in Latin,
# and the apostrophes (dropped: O'NEIL is printed ONEIL). Mapped before NFKD, which would
# leave the letters as they are and turn an acute accent used as an apostrophe into a space
# and a mark. Doc 9303 Part 3 transliterates Ø as OE; O is taken here, as for the letters
# whose mark NFKD drops (Ä is A, although Doc 9303 allows AE too), so one form is compared.
_TRANSLITERATION: Final = str.maketrans(
    {
        "ß": "SS",
        "ẞ": "SS",
        "Æ": "AE",
        "æ": "AE",
        "Ø": "O",
        "ø": "O",
        "Œ": "OE",
        "œ": "OE",
        "Þ": "TH",
        "þ": "TH",
        "Ð": "D",
        "ð": "D",
        "Đ": "D",
        "đ": "D",
        "Ħ": "H",
        "ħ": "H",
        "Ł": "L",
        "ł": "L",
        "\u0131": "I",  # Turkish dotless i
        **dict.fromkeys("'\u2018\u2019\u02bc\u02bb`\u00b4\u2032", ""),
    }
)
_NAME_LETTERS: Final = frozenset(_LETTERS + " ")
# The name field's width in each format: TD1 line 3 (30), TD2 and MRV-B (31), TD3 and
# MRV-A (39).
_NAME_WIDTHS: Final = tuple(
    sorted({layout.name.stop - layout.name.start for layout in (_TD1, _TD2, _TD3, _MRVA, _MRVB)})
)


def normalise_name(text: str) -> str:
    """A name in the form used to compare names (ICAO Doc 9303 Part 3 style): ``A-Z`` and
    single spaces, no space at either end.

    The letters Unicode does not decompose are written out first (ß as SS, Æ as AE, Ø as O,
    Œ as OE, Þ as TH, Ð and Đ as D, Ħ as H, Ł as L, the dotless i as I), then NFKD drops
    every accent (É is E, Ñ is N) and the result is upper-cased. Hyphens and dashes, commas,
    ``<`` and whitespace separate components (a space); apostrophes and any other
    punctuation (``.``, ``'``, brackets) are dropped. ``""`` (no given names) stays ``""``.
    Raises ``ValueError`` when anything else remains: digits, symbols, or a script that is
    not Latin, which the caller has to transliterate first.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
    kept: list[str] = []
    for c in decomposed:
        category = unicodedata.category(c)
        if category.startswith("M"):
            continue
        if c in ",<" or category == "Pd" or c.isspace():
            kept.append(" ")
        elif not category.startswith("P"):
            kept.append(c)
    name = " ".join("".join(kept).upper().split())
    for c in name:
        if c not in _NAME_LETTERS:
            # The code point only: the rest of the text is the holder's name.
            raise ValueError(
                f"a name holds only Latin letters, spaces and punctuation; U+{ord(c):04X} is"
                " none of them"
            )
    return name


def mrz_name_forms(surname: str, given_names: str) -> frozenset[tuple[str, str]]:
    """Every ``(surname, given_names)`` pair :func:`parse_mrz` may return for a document of
    this holder, both names first passed through :func:`normalise_name` (which may raise
    ``ValueError``).

    The set holds the whole normalised pair and, for each name field width (30 in TD1, 31
    in TD2 and MRV-B, 39 in TD3 and MRV-A), the pair read back from ``SURNAME<<GIVEN<NAMES``
    cut to that width: a long name loses its end, the cut may fall inside ``<<`` (the
    given names are then lost) or leave a trailing ``<``. Issuers that abbreviate names
    otherwise (Doc 9303 Part 3 lets them shorten components) are not covered.
    """
    surname, given_names = normalise_name(surname), normalise_name(given_names)
    field = f"{surname}{FILLER * 2}{given_names}".replace(" ", FILLER)
    return frozenset(
        [(surname, given_names), *(_split_name(field[:width]) for width in _NAME_WIDTHS)]
    )

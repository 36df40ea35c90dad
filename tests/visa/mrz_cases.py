"""MRZ test material built with an independent implementation, the ``mrz`` package.

Check digits here come from ``mrz``'s own ``hash_string``, never from ``visa.mrz``, so a
mistake in the parser's arithmetic cannot hide behind the same mistake in the fixtures.
``compose`` lays out any of the five formats from its fields (also ones the package's
generators refuse: long document numbers, codes missing from its country list, impossible
dates for negative tests); ``corpus`` draws random valid documents through the package's
generators and pairs each with the fields it was given.
"""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from mrz.base.countries_ops import code_list
from mrz.base.functions import hash_string
from mrz.checker.mrva import MRVACodeChecker
from mrz.checker.mrvb import MRVBCodeChecker
from mrz.checker.td1 import TD1CodeChecker
from mrz.checker.td2 import TD2CodeChecker
from mrz.checker.td3 import TD3CodeChecker
from mrz.generator.mrva import MRVACodeGenerator
from mrz.generator.mrvb import MRVBCodeGenerator
from mrz.generator.td1 import TD1CodeGenerator
from mrz.generator.td2 import TD2CodeGenerator
from mrz.generator.td3 import TD3CodeGenerator

FormatName = Literal["TD1", "TD2", "TD3", "MRVA", "MRVB"]
FORMATS: tuple[FormatName, ...] = ("TD1", "TD2", "TD3", "MRVA", "MRVB")
WIDTH: dict[FormatName, int] = {"TD1": 30, "TD2": 36, "TD3": 44, "MRVA": 44, "MRVB": 36}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = LETTERS + "0123456789"

# The fixed "today" of the corpus: birth dates are drawn between 1950 and 2019 so that the
# oracle's checker, which resolves centuries against the real clock, agrees with the parser
# until 2050.
CORPUS_TODAY = date(2026, 6, 15)


def cd(s: str) -> str:
    """The oracle's check digit."""
    return str(hash_string(s))


def pad(s: str, width: int) -> str:
    assert len(s) <= width, (s, width)
    return s + "<" * (width - len(s))


def compose(
    fmt: FormatName,
    *,
    code: str = "",
    state: str = "UTO",
    name: str = "ERIKSSON<<ANNA<MARIA",
    number: str = "L898902C3",
    nationality: str = "UTO",
    birth: str = "740812",
    sex: str = "F",
    expiry: str = "120415",
    optional: str = "",
    optional_2: str = "",
    personal_check: str | None = None,
    birth_check: str | None = None,
) -> str:
    """An MRZ of format ``fmt`` with every check digit right (oracle arithmetic).

    ``code`` defaults to the format's usual code (I, P or V). A ``number`` longer than 9 is
    written in the TD1/TD2 long form. ``personal_check`` overrides TD3's optional-data
    check digit (e.g. ``"<"`` for a blank personal number) and ``birth_check`` the birth
    date's, both counted as written in the composite. ``optional_2`` is TD1 only.
    """
    width = WIDTH[fmt]
    code = code or {"TD1": "I", "TD2": "I", "TD3": "P"}.get(fmt, "V")
    head = pad(code, 2) + pad(state, 3)
    if len(number) > 9:
        assert fmt in ("TD1", "TD2"), "only TD1 and TD2 have the long document number form"
        number_part = number[:9] + "<"
        overflow = number[9:] + cd(number)
        # The filler that ends the overflow is the padding when no optional data follows,
        # and absent when the overflow fills the whole field.
        optional = overflow + "<" + optional if optional else overflow
    else:
        number_part = pad(number, 9) + cd(pad(number, 9))
    dates = (birth + (cd(birth) if birth_check is None else birth_check), sex, expiry + cd(expiry))
    if fmt == "TD1":
        line1 = head + number_part + pad(optional, 15)
        upper = line1[5:30] + dates[0] + dates[2] + pad(optional_2, 11)
        line2 = dates[0] + sex + dates[2] + pad(nationality, 3) + pad(optional_2, 11) + cd(upper)
        return "\n".join([line1, line2, pad(name, 30)])
    line1 = head + pad(name, width - 5)
    start = number_part + pad(nationality, 3) + dates[0] + sex + dates[2]
    if fmt in ("MRVA", "MRVB"):
        return line1 + "\n" + start + pad(optional, width - 28)
    if fmt == "TD3":
        personal = pad(optional, 14)
        tail = personal + (cd(personal) if personal_check is None else personal_check)
    else:
        tail = pad(optional, 7)
    covered = number_part + dates[0] + dates[2] + tail
    return line1 + "\n" + start + tail + cd(covered)


@dataclass(frozen=True)
class Case:
    """A generated MRZ and the fields it must parse to."""

    format: FormatName
    text: str
    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: date
    sex: str
    expiry_date: date
    optional_data_1: str
    optional_data_2: str


Checker = Callable[[str], object]
CHECKERS: dict[FormatName, Checker] = {
    "TD1": TD1CodeChecker,
    "TD2": TD2CodeChecker,
    "TD3": TD3CodeChecker,
    "MRVA": MRVACodeChecker,
    "MRVB": MRVBCodeChecker,
}
# Width of each optional data field, and of the name field, per format.
OPTIONAL_WIDTHS: dict[FormatName, tuple[int, ...]] = {
    "TD1": (15, 11),
    "TD2": (7,),
    "TD3": (14,),
    "MRVA": (16,),
    "MRVB": (8,),
}
NAME_WIDTH: dict[FormatName, int] = {"TD1": 30, "TD2": 31, "TD3": 39, "MRVA": 39, "MRVB": 31}


def oracle_accepts(fmt: FormatName, text: str) -> bool:
    return bool(CHECKERS[fmt](text))


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(low, high)))


def _names(rng: random.Random, width: int) -> tuple[str, str]:
    """A surname of 1-2 words and 0-3 given names whose MRZ form fits ``width``."""
    while True:
        surname = " ".join(_word(rng, 1, 12) for _ in range(rng.randint(1, 2)))
        given = " ".join(_word(rng, 1, 10) for _ in range(rng.randint(0, 3)))
        if len(surname) + 2 + len(given) <= width:
            return surname, given


def _optional(rng: random.Random, width: int) -> str:
    """Empty a third of the time; else alphanumerics, perhaps with inner fillers."""
    if rng.random() < 1 / 3:
        return ""
    chars = [rng.choice(ALNUM + "<") for _ in range(rng.randint(1, width))]
    chars[0] = chars[-1] = rng.choice(ALNUM)
    return "".join(chars)


def _code(rng: random.Random, fmt: FormatName) -> str:
    first = {"TD1": "ACI", "TD2": "ACI", "TD3": "P"}.get(fmt, "V")
    # The generator refuses V as second letter of an identity card, and "AC": Doc 9303
    # reserves them. The parser refuses V second in a TD1 too (DESIGN §10), not "AC".
    second = rng.choice(["", *(c for c in LETTERS if c != "V")])
    code = rng.choice(first) + second
    return "A" if code == "AC" else code


def _dates(rng: random.Random) -> tuple[date, date]:
    birth = date(1950, 1, 1) + timedelta(
        days=rng.randrange((date(2019, 12, 31).toordinal()) - date(1950, 1, 1).toordinal())
    )
    # The oracle reads YY 69-99 as 19YY for every date and requires expiry after birth;
    # the parser reads an expiry as 20YY. Expiries stay in 2000-2068 where both agree.
    low = max(birth + timedelta(days=1), date(2000, 1, 1)).toordinal()
    expiry = date.fromordinal(rng.randint(low, date(2068, 12, 31).toordinal()))
    return birth, expiry


def corpus(fmt: FormatName, count: int, seed: int) -> Iterator[Case]:
    """``count`` random valid documents of format ``fmt``, drawn with the oracle's generator."""
    rng = random.Random(f"{fmt}-{seed}")
    states = code_list()
    for _ in range(count):
        code = _code(rng, fmt)
        state, nationality = rng.choice(states), rng.choice(states)
        surname, given = _names(rng, NAME_WIDTH[fmt])
        number = "".join(rng.choice(ALNUM) for _ in range(rng.randint(1, 9)))
        birth, expiry = _dates(rng)
        sex = rng.choice("MFX<")
        optional = [_optional(rng, width) for width in OPTIONAL_WIDTHS[fmt]]
        common = {
            "document_type": code,
            "country_code": state,
            "document_number": number,
            "birth_date": birth.strftime("%y%m%d"),
            "sex": sex,
            "expiry_date": expiry.strftime("%y%m%d"),
            "nationality": nationality,
            "surname": surname,
            "given_names": given,
        }
        if fmt == "TD1":
            text = str(
                TD1CodeGenerator(**common, optional_data1=optional[0], optional_data2=optional[1])
            )
        else:
            generator = {
                "TD2": TD2CodeGenerator,
                "TD3": TD3CodeGenerator,
                "MRVA": MRVACodeGenerator,
                "MRVB": MRVBCodeGenerator,
            }[fmt]
            text = str(generator(**common, optional_data=optional[0]))
        yield Case(
            format=fmt,
            text=text,
            document_code=code,
            issuing_state=state,
            surname=surname,
            given_names=given,
            document_number=number,
            nationality=nationality,
            birth_date=birth,
            sex="X" if sex in "X<" else sex,
            expiry_date=expiry,
            optional_data_1=optional[0],
            optional_data_2=optional[1] if fmt == "TD1" else "",
        )


def long_number_corpus(count: int, seed: int) -> Iterator[Case]:
    """TD1 and TD2 documents with 10- to 22-character document numbers.

    The oracle's generator caps numbers at 9 characters, so these are laid out by
    ``compose`` (with the oracle's check digits), leaving room in the optional data field
    for the overflow, its check digit, the terminating filler and some optional data.
    """
    rng = random.Random(f"long-{seed}")
    for i in range(count):
        fmt: FormatName = "TD1" if i % 2 == 0 else "TD2"
        room = OPTIONAL_WIDTHS[fmt][0]
        number = "".join(rng.choice(ALNUM) for _ in range(rng.randint(10, 9 + room - 2)))
        left = room - (len(number) - 9) - 2
        optional = _optional(rng, left) if left > 0 else ""
        optional_2 = _optional(rng, 11) if fmt == "TD1" else ""
        birth, expiry = _dates(rng)
        sex = rng.choice("MF<")
        text = compose(
            fmt,
            number=number,
            birth=birth.strftime("%y%m%d"),
            expiry=expiry.strftime("%y%m%d"),
            sex=sex,
            optional=optional,
            optional_2=optional_2,
        )
        yield Case(
            format=fmt,
            text=text,
            document_code="I",
            issuing_state="UTO",
            surname="ERIKSSON",
            given_names="ANNA MARIA",
            document_number=number,
            nationality="UTO",
            birth_date=birth,
            sex="X" if sex == "<" else sex,
            expiry_date=expiry,
            optional_data_1=optional,
            optional_data_2=optional_2,
        )

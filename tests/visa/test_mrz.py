import contextlib
import dataclasses
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.visa import mrz_cases
from tests.visa.mrz_cases import FORMATS, WIDTH, FormatName, compose
from visa.mrz import (
    MRZ,
    MRZError,
    check_digit,
    format_td3,
    mrz_name_forms,
    normalise_name,
    parse_mrz,
)

SPECIMEN_TODAY = date(2026, 1, 1)

# The specimens printed in ICAO Doc 9303 (8th edition): Part 4 (TD3), Part 5 (TD1, and
# the TD1 with a long document number), Part 6 (TD2), Part 7 (MRV-A, MRV-B). Every check
# digit was recomputed by hand and by the oracle: all of them validate as printed.
TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)
TD1_LONG_NUMBER = (
    "I<UTOD23145890<7349<<<<<<<<<<<\n3407127M9507122UTO<<<<<<<<<<<2\nSTEVENSON<<PETER<JOHN<<<<<<<<<"
)
TD2 = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6"
# In the MRV-A specimen the expiry check digit is the 9 of "...961210 9"; the "6" after it
# opens the optional data, which is printed as "6ZE184226B".
MRVA = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL8988901C4XXX4009078F96121096ZE184226B<<<<<<"
MRVB = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nL8988901C4XXX4009078F9612109<<<<<<<<"
SPECIMENS: dict[FormatName, str] = {"TD1": TD1, "TD2": TD2, "TD3": TD3, "MRVA": MRVA, "MRVB": MRVB}


def parse(text: str, today: date = SPECIMEN_TODAY) -> MRZ:
    return parse_mrz(text, today=today)


def error_of(text: str, today: date = SPECIMEN_TODAY) -> tuple[str, str]:
    with pytest.raises(MRZError) as caught:
        parse_mrz(text, today=today)
    return caught.value.field, caught.value.reason


def replace_at(text: str, line: int, column: int, new: str) -> str:
    """``text`` with the character at 1-based ``line`` and ``column`` replaced by ``new``."""
    lines = text.split("\n")
    row = lines[line - 1]
    lines[line - 1] = row[: column - 1] + new + row[column:]
    return "\n".join(lines)


class TestCheckDigit:
    def test_examples_from_doc_9303_part_3(self) -> None:
        assert check_digit("520727") == "3"
        assert check_digit("AB2134<<<") == "5"

    def test_letters_count_10_to_35_and_fillers_0(self) -> None:
        assert check_digit("A") == check_digit("<") == "0"  # 10 * 7 = 70
        assert check_digit("Z") == "5"  # 35 * 7 = 245
        assert check_digit("") == "0"

    @pytest.mark.parametrize("text", ["ab", "É", " ", "\x00"])
    def test_non_mrz_characters_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not an MRZ character"):
            check_digit(text)

    def test_agrees_with_the_oracle(self) -> None:
        for fmt in FORMATS:
            for case in mrz_cases.corpus(fmt, 20, seed=7):
                for line in case.text.split("\n"):
                    assert check_digit(line) == mrz_cases.cd(line)


class TestSpecimens:
    def test_td3_passport(self) -> None:
        assert parse(TD3) == MRZ(
            format="TD3",
            document_code="P",
            issuing_state="UTO",
            surname="ERIKSSON",
            given_names="ANNA MARIA",
            document_number="L898902C3",
            nationality="UTO",
            birth_date=date(1974, 8, 12),
            sex="F",
            expiry_date=date(2012, 4, 15),
            optional_data="ZE184226B",
            optional_data_1="ZE184226B",
            optional_data_2="",
        )

    def test_td1_identity_card(self) -> None:
        mrz = parse(TD1)
        assert (mrz.format, mrz.document_code, mrz.issuing_state) == ("TD1", "I", "UTO")
        assert (mrz.surname, mrz.given_names) == ("ERIKSSON", "ANNA MARIA")
        assert (mrz.document_number, mrz.nationality, mrz.sex) == ("D23145890", "UTO", "F")
        assert (mrz.birth_date, mrz.expiry_date) == (date(1974, 8, 12), date(2012, 4, 15))
        assert (mrz.optional_data, mrz.optional_data_1, mrz.optional_data_2) == ("", "", "")

    def test_td1_with_a_long_document_number(self) -> None:
        mrz = parse(TD1_LONG_NUMBER)
        assert mrz.document_number == "D23145890734"
        assert (mrz.surname, mrz.given_names, mrz.sex) == ("STEVENSON", "PETER JOHN", "M")
        assert (mrz.birth_date, mrz.expiry_date) == (date(1934, 7, 12), date(2095, 7, 12))
        assert mrz.optional_data == ""

    def test_td2(self) -> None:
        mrz = parse(TD2)
        assert (mrz.format, mrz.document_code, mrz.document_number) == ("TD2", "I", "D23145890")
        assert (mrz.surname, mrz.given_names, mrz.sex) == ("ERIKSSON", "ANNA MARIA", "F")
        assert (mrz.birth_date, mrz.expiry_date) == (date(1974, 8, 12), date(2012, 4, 15))
        assert mrz.optional_data == ""

    def test_mrv_a(self) -> None:
        mrz = parse(MRVA)
        assert (mrz.format, mrz.document_code, mrz.document_number) == ("MRVA", "V", "L8988901C")
        assert (mrz.issuing_state, mrz.nationality) == ("UTO", "XXX")
        assert (mrz.birth_date, mrz.expiry_date) == (date(1940, 9, 7), date(2096, 12, 10))
        assert mrz.optional_data == "6ZE184226B"

    def test_mrv_b(self) -> None:
        mrz = parse(MRVB)
        assert (mrz.format, mrz.document_code, mrz.document_number) == ("MRVB", "V", "L8988901C")
        assert (mrz.surname, mrz.given_names, mrz.nationality) == ("ERIKSSON", "ANNA MARIA", "XXX")
        assert (mrz.birth_date, mrz.expiry_date) == (date(1940, 9, 7), date(2096, 12, 10))
        assert mrz.optional_data == ""

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_the_oracle_accepts_the_specimen(self, fmt: FormatName) -> None:
        assert mrz_cases.oracle_accepts(fmt, SPECIMENS[fmt])

    def test_composed_specimens_match_the_printed_ones(self) -> None:
        # The fixture composer reproduces the specimens, so the cases built with it below
        # are laid out as Doc 9303 lays them out.
        assert compose("TD3", optional="ZE184226B") == TD3
        assert compose("TD1", number="D23145890") == TD1
        assert compose("TD2", number="D23145890") == TD2
        visa = {"number": "L8988901C", "nationality": "XXX", "birth": "400907", "expiry": "961210"}
        assert compose("MRVA", optional="6ZE184226B", **visa) == MRVA
        assert compose("MRVB", **visa) == MRVB
        assert (
            compose(
                "TD1",
                number="D23145890734",
                name="STEVENSON<<PETER<JOHN",
                birth="340712",
                sex="M",
                expiry="950712",
            )
            == TD1_LONG_NUMBER
        )


class TestOracleCorpus:
    """Random documents drawn with the ``mrz`` package's generators parse to the fields
    they were drawn from, and the package's checkers accept them too."""

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_generated_documents_parse_to_their_fields(self, fmt: FormatName) -> None:
        for case in mrz_cases.corpus(fmt, 80, seed=2026):
            assert mrz_cases.oracle_accepts(fmt, case.text), case.text
            mrz = parse_mrz(case.text, today=mrz_cases.CORPUS_TODAY)
            self.assert_fields(mrz, case)

    def test_long_document_numbers_parse_in_full(self) -> None:
        # The oracle neither generates nor checks the long form, so these are composed with
        # its check digit arithmetic and only the parser reads them.
        for case in mrz_cases.long_number_corpus(60, seed=2026):
            mrz = parse_mrz(case.text, today=mrz_cases.CORPUS_TODAY)
            self.assert_fields(mrz, case)

    @staticmethod
    def assert_fields(mrz: MRZ, case: mrz_cases.Case) -> None:
        expected = (
            case.format,
            case.document_code,
            case.issuing_state,
            case.surname,
            case.given_names,
            case.document_number,
            case.nationality,
            case.birth_date,
            case.sex,
            case.expiry_date,
            case.optional_data_1,
            case.optional_data_2,
        )
        got = (
            mrz.format,
            mrz.document_code,
            mrz.issuing_state,
            mrz.surname,
            mrz.given_names,
            mrz.document_number,
            mrz.nationality,
            mrz.birth_date,
            mrz.sex,
            mrz.expiry_date,
            mrz.optional_data_1,
            mrz.optional_data_2,
        )
        assert got == expected, case.text
        joined = " ".join(part for part in (case.optional_data_1, case.optional_data_2) if part)
        assert mrz.optional_data == joined


def negative(label: str, text: str, field: str, reason: str) -> tuple[str, str, str, str]:
    return (label, text, field, reason)


TD3_LINES = TD3.split("\n")
NEGATIVES = [
    # shape
    negative("empty text", "", "format", "invalid_line_count"),
    negative("blank lines only", "\n \n\t\n", "format", "invalid_line_count"),
    negative("one line", TD3_LINES[0], "format", "invalid_line_count"),
    negative("the two lines joined", TD3.replace("\n", ""), "format", "invalid_line_count"),
    negative("four lines", TD1 + "\n" + "<" * 30, "format", "invalid_line_count"),
    # Only blank lines before and after the zone are ignored; one inside it is a line.
    negative("blank line inside TD3", TD3.replace("\n", "\n\n"), "format", "invalid_length"),
    negative("blank line inside TD1", TD1.replace("\n", "\n\n", 1), "format", "invalid_line_count"),
    negative("lines of 43", "\n".join(x[:43] for x in TD3_LINES), "format", "invalid_length"),
    negative("lines of 45", "\n".join(x + "<" for x in TD3_LINES), "format", "invalid_length"),
    negative("unequal lines", TD3_LINES[0] + "\n" + TD3_LINES[1][:43], "format", "invalid_length"),
    negative("unequal TD1 lines", TD1[:-1], "format", "invalid_length"),
    negative("two lines of 30", "\n".join(TD1.split("\n")[:2]), "format", "invalid_length"),
    negative("three lines of 44", TD3 + "\n" + "<" * 44, "format", "invalid_length"),
    # character set: lowercase, then anything else outside A-Z 0-9 <
    negative("lowercase code", "p" + TD3[1:], "document_code", "lowercase_character"),
    negative("lowercase state", replace_at(TD3, 1, 3, "u"), "issuing_state", "lowercase_character"),
    negative("lowercase name", replace_at(TD3, 1, 8, "i"), "name", "lowercase_character"),
    negative(
        "lowercase number", replace_at(TD3, 2, 1, "l"), "document_number", "lowercase_character"
    ),
    negative(
        "lowercase nationality", replace_at(TD3, 2, 11, "u"), "nationality", "lowercase_character"
    ),
    negative("lowercase sex", replace_at(TD3, 2, 21, "f"), "sex", "lowercase_character"),
    negative(
        "lowercase optional", replace_at(TD3, 2, 29, "z"), "optional_data", "lowercase_character"
    ),
    negative("E acute in name", replace_at(TD3, 1, 14, "É"), "name", "invalid_character"),
    negative("e acute in name", replace_at(TD3, 1, 14, "é"), "name", "invalid_character"),
    negative("NUL in name", replace_at(TD3, 1, 20, "\x00"), "name", "invalid_character"),
    negative("space in name", replace_at(TD3, 1, 14, " "), "name", "invalid_character"),
    negative("digit in name", replace_at(TD3, 1, 8, "1"), "name", "invalid_character"),
    negative("dash in number", replace_at(TD3, 2, 3, "-"), "document_number", "invalid_character"),
    negative(
        "NUL in birth date", replace_at(TD3, 2, 15, "\x00"), "birth_date", "invalid_character"
    ),
    negative("tab in expiry", replace_at(TD3, 2, 23, "\t"), "expiry_date", "invalid_character"),
    negative("NUL in composite", replace_at(TD3, 2, 44, "\x00"), "composite", "invalid_character"),
    negative("digit in state", replace_at(TD3, 1, 5, "0"), "issuing_state", "invalid_character"),
    negative(
        "digit in nationality", replace_at(TD1, 2, 17, "0"), "nationality", "invalid_character"
    ),
    negative(
        "lowercase beats a check digit",
        replace_at(replace_at(TD3, 2, 10, "7"), 2, 2, "x"),
        "document_number",
        "lowercase_character",
    ),
    # document code
    negative("P in a TD1", "P" + TD1[1:], "document_code", "invalid_document_code"),
    negative("V in a TD1", "V" + TD1[1:], "document_code", "invalid_document_code"),
    negative("P in a TD2", "P" + TD2[1:], "document_code", "invalid_document_code"),
    negative("I in a TD3-sized zone", "I" + TD3[1:], "document_code", "invalid_document_code"),
    negative("A in a TD3-sized zone", "A" + TD3[1:], "document_code", "invalid_document_code"),
    negative("digit first", "1" + TD3[1:], "document_code", "invalid_document_code"),
    negative("digit second", "P1" + TD3[2:], "document_code", "invalid_document_code"),
    negative("filler first", "<" + TD1[1:], "document_code", "invalid_document_code"),
    # V in second place is kept for visas (Doc 9303 Part 5), which are never TD1.
    negative("IV in a TD1", compose("TD1", code="IV"), "document_code", "invalid_document_code"),
    negative("AV in a TD1", compose("TD1", code="AV"), "document_code", "invalid_document_code"),
    negative("CV in a TD1", compose("TD1", code="CV"), "document_code", "invalid_document_code"),
    negative(
        "IV in a TD1 in place", replace_at(TD1, 1, 2, "V"), "document_code", "invalid_document_code"
    ),
    # dates, with the check digits recomputed so that only the date is wrong
    negative("birth month 13", compose("TD3", birth="741312"), "birth_date", "invalid_date"),
    negative("birth month 00", compose("TD3", birth="740012"), "birth_date", "invalid_date"),
    negative("birth day 00", compose("TD3", birth="740800"), "birth_date", "invalid_date"),
    negative("birth Feb 30", compose("TD1", birth="740230"), "birth_date", "invalid_date"),
    negative("birth Feb 29 of 1974", compose("TD2", birth="740229"), "birth_date", "invalid_date"),
    negative("birth Apr 31", compose("MRVA", birth="740431"), "birth_date", "invalid_date"),
    negative("expiry month 13", compose("TD3", expiry="121315"), "expiry_date", "invalid_date"),
    negative("expiry Feb 30", compose("MRVB", expiry="120230"), "expiry_date", "invalid_date"),
    negative("expiry Feb 29 2013", compose("TD1", expiry="130229"), "expiry_date", "invalid_date"),
    negative("expiry day 32", compose("TD2", expiry="120132"), "expiry_date", "invalid_date"),
    negative("letter O for zero", compose("TD3", expiry="12O415"), "expiry_date", "invalid_date"),
    negative(
        "partly unknown month 13", compose("TD3", birth="7413<<"), "birth_date", "invalid_date"
    ),
    negative("partly unknown Feb 30", compose("TD3", birth="<<0230"), "birth_date", "invalid_date"),
    # A lone filler inside a block: ICAO lets only a whole block (YY, MM or DD) be unknown.
    negative("birth year 7<", compose("TD3", birth="7<0812"), "birth_date", "invalid_date"),
    negative("birth year <4", compose("TD1", birth="<40812"), "birth_date", "invalid_date"),
    negative("birth month 0<", compose("TD2", birth="740<12"), "birth_date", "invalid_date"),
    negative("birth month <8", compose("MRVA", birth="74<812"), "birth_date", "invalid_date"),
    negative("birth day 1<", compose("MRVB", birth="74081<"), "birth_date", "invalid_date"),
    negative("birth day <2", compose("TD3", birth="7408<2"), "birth_date", "invalid_date"),
    negative(
        "birth with one block unknown and one half",
        compose("TD3", birth="<<08<2"),
        "birth_date",
        "invalid_date",
    ),
    negative(
        "half a birth block, filler check digit",
        compose("TD3", birth="7<0812", birth_check="<"),
        "birth_date",
        "invalid_date",
    ),
    negative("expiry year 1<", compose("TD3", expiry="1<0415"), "expiry_date", "invalid_date"),
    negative("expiry month <4", compose("TD1", expiry="12<415"), "expiry_date", "invalid_date"),
    negative("expiry day 1<", compose("TD2", expiry="12041<"), "expiry_date", "invalid_date"),
    negative(
        "half a birth block in place",
        TD3.replace("7408122F", "7408<22F"),
        "birth_date",
        "invalid_date",
    ),
    # dates changed in place: the date is reported even though its check digit now fails
    negative(
        "month 13 in place",
        replace_at(replace_at(TD3, 2, 16, "1"), 2, 17, "3"),
        "birth_date",
        "invalid_date",
    ),
    negative("Feb 30 in place", TD1.replace("7408122F", "7402302F"), "birth_date", "invalid_date"),
    # sex
    negative("sex Z", compose("TD3", sex="Z"), "sex", "invalid_sex"),
    negative("sex digit", compose("TD1", sex="1"), "sex", "invalid_sex"),
    negative("sex Z in place", replace_at(TD2, 2, 21, "Z"), "sex", "invalid_sex"),
    # check digits
    negative("TD3 number", replace_at(TD3, 2, 10, "7"), "document_number", "check_digit_mismatch"),
    negative("TD3 birth", replace_at(TD3, 2, 20, "3"), "birth_date", "check_digit_mismatch"),
    negative("TD3 expiry", replace_at(TD3, 2, 28, "0"), "expiry_date", "check_digit_mismatch"),
    negative("TD3 personal", replace_at(TD3, 2, 43, "2"), "optional_data", "check_digit_mismatch"),
    negative("TD3 composite", replace_at(TD3, 2, 44, "1"), "composite", "check_digit_mismatch"),
    negative("TD1 number", replace_at(TD1, 1, 15, "8"), "document_number", "check_digit_mismatch"),
    negative("TD1 birth", replace_at(TD1, 2, 7, "3"), "birth_date", "check_digit_mismatch"),
    negative("TD1 expiry", replace_at(TD1, 2, 15, "0"), "expiry_date", "check_digit_mismatch"),
    negative("TD1 composite", replace_at(TD1, 2, 30, "7"), "composite", "check_digit_mismatch"),
    negative("TD2 number", replace_at(TD2, 2, 10, "8"), "document_number", "check_digit_mismatch"),
    negative("TD2 birth", replace_at(TD2, 2, 20, "3"), "birth_date", "check_digit_mismatch"),
    negative("TD2 expiry", replace_at(TD2, 2, 28, "0"), "expiry_date", "check_digit_mismatch"),
    negative("TD2 composite", replace_at(TD2, 2, 36, "7"), "composite", "check_digit_mismatch"),
    negative(
        "MRVA number", replace_at(MRVA, 2, 10, "5"), "document_number", "check_digit_mismatch"
    ),
    negative("MRVA birth", replace_at(MRVA, 2, 20, "9"), "birth_date", "check_digit_mismatch"),
    negative("MRVA expiry", replace_at(MRVA, 2, 28, "0"), "expiry_date", "check_digit_mismatch"),
    negative(
        "MRVB number", replace_at(MRVB, 2, 10, "5"), "document_number", "check_digit_mismatch"
    ),
    negative("MRVB birth", replace_at(MRVB, 2, 20, "9"), "birth_date", "check_digit_mismatch"),
    negative("MRVB expiry", replace_at(MRVB, 2, 28, "0"), "expiry_date", "check_digit_mismatch"),
    negative(
        "letter as a check digit",
        replace_at(TD3, 2, 20, "A"),
        "birth_date",
        "check_digit_mismatch",
    ),
    negative(
        "data changed under a good check digit",
        replace_at(TD3, 2, 2, "9"),
        "document_number",
        "check_digit_mismatch",
    ),
    negative(
        "O for zero in a number",
        replace_at(TD3, 2, 6, "O"),
        "document_number",
        "check_digit_mismatch",
    ),
    negative(
        "optional data changed",
        replace_at(TD3, 2, 29, "Y"),
        "optional_data",
        "check_digit_mismatch",
    ),
    negative(
        "TD1 optional data changed",
        # B, not A: at a weight-1 position A (10) and the filler (0) give the same digit.
        replace_at(TD1, 1, 20, "B"),
        "composite",
        "check_digit_mismatch",
    ),
    negative(
        "filler check digit on a personal number",
        compose("TD3", optional="ZE184226B", personal_check="<"),
        "optional_data",
        "check_digit_mismatch",
    ),
    negative(
        "filler check digit on a known date",
        compose("TD3", birth_check="<"),
        "birth_date",
        "check_digit_mismatch",
    ),
    negative(
        "long-number mark without the rest",
        replace_at(TD1, 1, 15, "<"),
        "document_number",
        "check_digit_mismatch",
    ),
    negative(
        "long-number mark with one character",
        replace_at(replace_at(TD1, 1, 15, "<"), 1, 16, "7"),
        "document_number",
        "check_digit_mismatch",
    ),
    negative(
        "long number, wrong check digit",
        replace_at(TD1_LONG_NUMBER, 1, 19, "8"),
        "document_number",
        "check_digit_mismatch",
    ),
    negative(
        "TD2 long number, wrong check digit",
        replace_at(compose("TD2", number="D2314589073"), 2, 31, "0"),
        "document_number",
        "check_digit_mismatch",
    ),
    negative(
        "no long form in a TD3",
        replace_at(TD3, 2, 10, "<"),
        "document_number",
        "check_digit_mismatch",
    ),
]


class TestInvalid:
    @pytest.mark.parametrize(
        ("text", "field", "reason"),
        [pytest.param(text, field, reason, id=label) for label, text, field, reason in NEGATIVES],
    )
    def test_field_and_reason(self, text: str, field: str, reason: str) -> None:
        assert error_of(text) == (field, reason)

    def test_the_error_reads_as_a_sentence_and_keeps_its_codes(self) -> None:
        with pytest.raises(MRZError) as caught:
            parse(replace_at(TD3, 2, 10, "7"))
        error = caught.value
        assert (error.field, error.reason) == ("document_number", "check_digit_mismatch")
        assert str(error) == (
            "invalid MRZ: line 2, column 10: check digit '7' does not match '6'"
            " (field document_number, reason check_digit_mismatch)"
        )

    def test_the_message_does_not_repeat_the_holders_data(self) -> None:
        for _, text, _, _ in NEGATIVES:
            with pytest.raises(MRZError) as caught:
                parse(text)
            assert "ERIKSSON" not in str(caught.value)
            assert "L898902C3" not in str(caught.value)

    def test_a_td1_document_code_of_p_is_not_read_as_another_format(self) -> None:
        assert error_of("P" + TD1[1:]) == ("document_code", "invalid_document_code")


# Which field each position belongs to, written out from Doc 9303 Parts 4-7:
# c document code, s issuing state, n name, d document number, t nationality,
# b birth date, x sex, e expiry date, o optional data, k composite check digit.
FIELD_MAPS: dict[FormatName, tuple[str, ...]] = {
    "TD1": (
        "ccsssdddddddddd" + "o" * 15,
        "bbbbbbbxeeeeeeettt" + "o" * 11 + "k",
        "n" * 30,
    ),
    "TD2": ("ccsss" + "n" * 31, "dddddddddd" + "ttt" + "bbbbbbb" + "x" + "eeeeeee" + "o" * 7 + "k"),
    "TD3": (
        "ccsss" + "n" * 39,
        "dddddddddd" + "ttt" + "bbbbbbb" + "x" + "eeeeeee" + "o" * 15 + "k",
    ),
    "MRVA": ("ccsss" + "n" * 39, "dddddddddd" + "ttt" + "bbbbbbb" + "x" + "eeeeeee" + "o" * 16),
    "MRVB": ("ccsss" + "n" * 31, "dddddddddd" + "ttt" + "bbbbbbb" + "x" + "eeeeeee" + "o" * 8),
}
FIELD_NAMES = {
    "c": "document_code",
    "s": "issuing_state",
    "n": "name",
    "d": "document_number",
    "t": "nationality",
    "b": "birth_date",
    "x": "sex",
    "e": "expiry_date",
    "o": "optional_data",
    "k": "composite",
}


class TestPositions:
    @pytest.mark.parametrize("fmt", FORMATS)
    def test_every_position_reports_its_own_field(self, fmt: FormatName) -> None:
        text = SPECIMENS[fmt]
        for row, legend in enumerate(FIELD_MAPS[fmt], start=1):
            assert len(legend) == WIDTH[fmt]
            for column, key in enumerate(legend, start=1):
                expected = FIELD_NAMES[key]
                assert error_of(replace_at(text, row, column, "\x00")) == (
                    expected,
                    "invalid_character",
                ), (fmt, row, column)
                # The first character also picks the format; a lowercase v would read as a
                # TD2/TD3 zone, still reported at the document code.
                assert error_of(replace_at(text, row, column, "q")) == (
                    expected,
                    "lowercase_character",
                ), (fmt, row, column)


class TestTolerance:
    def test_crlf_and_whitespace_around_lines(self) -> None:
        messy = "\r\n  \r\n\t" + TD3.replace("\n", "  \r\n   ") + " \r\n\r\n"
        assert parse(messy) == parse(TD3)

    def test_old_mac_line_ends_and_a_trailing_newline(self) -> None:
        assert parse(TD1.replace("\n", "\r") + "\n") == parse(TD1)

    def test_the_format_follows_the_document_code(self) -> None:
        assert parse(TD3).format == "TD3"
        assert parse(MRVA).format == "MRVA"
        assert parse(TD2).format == "TD2"
        assert parse(MRVB).format == "MRVB"
        assert parse(TD1).format == "TD1"

    @pytest.mark.parametrize("code", ["A", "C", "I", "ID", "AB", "I<", "CZ"])
    def test_identity_card_codes(self, code: str) -> None:
        assert parse(compose("TD1", code=code)).document_code == code.strip("<")
        assert parse(compose("TD2", code=code)).document_code == code.strip("<")

    @pytest.mark.parametrize(
        ("written", "returned"),
        [
            ("D<<", "D"),
            ("GBD", "GBD"),
            ("GBN", "GBN"),
            ("GBO", "GBO"),
            ("GBP", "GBP"),
            ("GBS", "GBS"),
            ("UNO", "UNO"),
            ("UNA", "UNA"),
            ("UNK", "UNK"),
            ("XXA", "XXA"),
            ("XXB", "XXB"),
            ("XXC", "XXC"),
            ("XXX", "XXX"),
            ("EUE", "EUE"),
        ],
    )
    def test_special_state_codes(self, written: str, returned: str) -> None:
        for fmt in FORMATS:
            mrz = parse(compose(fmt, state=written, nationality=written))
            assert (mrz.issuing_state, mrz.nationality) == (returned, returned)


class TestNames:
    @pytest.mark.parametrize(
        ("written", "surname", "given_names"),
        [
            ("ERIKSSON<<ANNA<MARIA", "ERIKSSON", "ANNA MARIA"),
            ("VAN<DER<BERG<<JAN", "VAN DER BERG", "JAN"),
            ("MONONYM", "MONONYM", ""),
            ("SMITH<<", "SMITH", ""),
            ("<<ANNA", "", "ANNA"),
            ("DE<LA<CRUZ<<ANA<<MARIA", "DE LA CRUZ", "ANA MARIA"),
        ],
    )
    def test_split_at_the_first_double_filler(
        self, written: str, surname: str, given_names: str
    ) -> None:
        mrz = parse(compose("TD3", name=written))
        assert (mrz.surname, mrz.given_names) == (surname, given_names)

    def test_a_name_filling_the_field(self) -> None:
        name = "A" * 30 + "<<" + "B" * 7
        assert parse(compose("TD3", name=name)).given_names == "B" * 7


class TestDates:
    def test_expiry_is_always_this_century(self) -> None:
        assert parse(compose("TD3", expiry="991231")).expiry_date == date(2099, 12, 31)
        assert parse(compose("TD3", expiry="000101")).expiry_date == date(2000, 1, 1)

    def test_birth_is_the_latest_century_not_in_the_future(self) -> None:
        today = date(2026, 11, 23)
        born = {
            yymmdd: parse(compose("TD3", birth=yymmdd), today=today).birth_date
            for yymmdd in ("990101", "261124", "261123", "261122", "000229", "270101", "251231")
        }
        assert born == {
            "990101": date(1999, 1, 1),
            "261124": date(1926, 11, 24),
            "261123": date(2026, 11, 23),
            "261122": date(2026, 11, 22),
            "000229": date(2000, 2, 29),
            "270101": date(1927, 1, 1),
            "251231": date(2025, 12, 31),
        }

    def test_29_february_1900_does_not_exist(self) -> None:
        # In January 2000, "000229" would be in the future, and 1900 was not a leap year.
        text = compose("TD3", birth="000229")
        assert error_of(text, today=date(2000, 1, 15)) == ("birth_date", "invalid_date")
        assert parse(text, today=date(2000, 2, 29)).birth_date == date(2000, 2, 29)

    def test_today_defaults_to_the_local_date(self) -> None:
        assert parse_mrz(TD3).birth_date == date(1974, 8, 12)

    @pytest.mark.parametrize(
        "written", ["<<<<<<", "74<<<<", "7408<<", "<<0812", "<<0229", "74<<12", "<<08<<"]
    )
    @pytest.mark.parametrize("check", ["computed", "<"])
    def test_an_unknown_birth_date_is_none(self, written: str, check: str) -> None:
        for fmt in FORMATS:
            text = compose(fmt, birth=written, birth_check="<" if check == "<" else None)
            assert parse(text).birth_date is None

    @pytest.mark.parametrize("written", ["<<<<<<", "12<<<<", "1204<<", "<<0415", "12<<15"])
    def test_an_unknown_expiry_date_is_none(self, written: str) -> None:
        for fmt in FORMATS:
            assert parse(compose(fmt, expiry=written)).expiry_date is None

    @pytest.mark.parametrize("block", [0, 2, 4])
    def test_a_lone_filler_in_any_block_is_an_invalid_date(self, block: int) -> None:
        # Every position of every block, in both dates and every format: never read as
        # unknown, whether the check digit is computed or a filler.
        for position in (block, block + 1):
            for fmt in FORMATS:
                for field in ("birth", "expiry"):
                    written = "740812"[:position] + "<" + "740812"[position + 1 :]
                    text = compose(fmt, **{field: written})
                    assert error_of(text) == (f"{field}_date", "invalid_date"), (fmt, written)

    def test_an_unknown_date_with_a_wrong_check_digit_fails(self) -> None:
        assert check_digit("7408<<") == "7"
        text = compose("TD3", birth="7408<<", birth_check="3")
        assert error_of(text) == ("birth_date", "check_digit_mismatch")


class TestSexAndOptionalData:
    @pytest.mark.parametrize(
        ("written", "returned"), [("M", "M"), ("F", "F"), ("<", "X"), ("X", "X")]
    )
    def test_sex(self, written: str, returned: str) -> None:
        for fmt in FORMATS:
            assert parse(compose(fmt, sex=written)).sex == returned

    @pytest.mark.parametrize("check", ["0", "<"])
    def test_a_blank_personal_number_may_have_0_or_a_filler_check_digit(self, check: str) -> None:
        mrz = parse(compose("TD3", personal_check=check))
        assert mrz.optional_data == ""

    def test_td1_optional_fields_are_joined_by_a_space(self) -> None:
        mrz = parse(compose("TD1", optional="AB<12", optional_2="XY9"))
        assert (mrz.optional_data_1, mrz.optional_data_2) == ("AB<12", "XY9")
        assert mrz.optional_data == "AB<12 XY9"
        assert parse(compose("TD1", optional_2="XY9")).optional_data == "XY9"

    def test_visas_have_no_optional_or_composite_check(self) -> None:
        assert parse(compose("MRVA", optional="ANYTHING<1234567")).optional_data == (
            "ANYTHING<1234567"
        )
        assert parse(compose("MRVB", optional="12345678")).optional_data == "12345678"

    def test_long_number_without_a_terminating_filler(self) -> None:
        number = "D23145890" + "1234567890123"  # 22 characters: the overflow fills the field
        text = compose("TD1", number=number)
        assert text.split("\n")[0][15:30] == number[9:] + check_digit(number) + "<"
        mrz = parse(text)
        assert (mrz.document_number, mrz.optional_data) == (number, "")
        full = compose("TD1", number=number + "4")
        assert "<" not in full.split("\n")[0][15:30]
        assert parse(full).document_number == number + "4"

    def test_long_td2_number_and_its_optional_data(self) -> None:
        mrz = parse(compose("TD2", number="D2314589073", optional="AB"))
        assert (mrz.document_number, mrz.optional_data) == ("D2314589073", "AB")


class TestValue:
    def test_mrz_is_frozen(self) -> None:
        mrz = parse(TD3)
        with pytest.raises(dataclasses.FrozenInstanceError):
            mrz.surname = "X"  # type: ignore[misc]

    def test_error_is_an_exception_with_codes(self) -> None:
        error = MRZError("sex", "invalid_sex", "line 2, column 21: sex is M, F, X or '<'")
        assert isinstance(error, Exception)
        assert (error.field, error.reason) == ("sex", "invalid_sex")
        assert "sex is M, F, X or '<'" in str(error)


MRZ_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"


class TestNeverAnotherException:
    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_arbitrary_text(self, text: str) -> None:
        with contextlib.suppress(MRZError):
            parse_mrz(text, today=SPECIMEN_TODAY)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.sampled_from(FORMATS).flatmap(
            lambda fmt: st.lists(
                st.text(alphabet=MRZ_CHARS, min_size=WIDTH[fmt], max_size=WIDTH[fmt]),
                min_size=3 if fmt == "TD1" else 2,
                max_size=3 if fmt == "TD1" else 2,
            )
        )
    )
    def test_well_shaped_noise(self, lines: list[str]) -> None:
        with contextlib.suppress(MRZError):
            parse_mrz("\n".join(lines), today=SPECIMEN_TODAY)

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(FORMATS),
        st.integers(min_value=0, max_value=131),
        st.characters(),
    )
    def test_one_character_changed(self, fmt: FormatName, position: int, new: str) -> None:
        text = SPECIMENS[fmt]
        position %= len(text)
        with contextlib.suppress(MRZError):
            parse_mrz(text[:position] + new + text[position + 1 :], today=SPECIMEN_TODAY)


class TestFormatTd3:
    def test_composes_the_doc_9303_specimen(self) -> None:
        composed = format_td3(
            surname="ERIKSSON",
            given_names="ANNA MARIA",
            document_number="L898902C3",
            issuing_state="UTO",
            nationality="UTO",
            birth_date=date(1974, 8, 12),
            sex="F",
            expiry_date=date(2012, 4, 15),
            optional_data="ZE184226B",
        )
        assert composed == (
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
        )

    def test_unknown_birth_date_and_sex_round_trip(self) -> None:
        parsed = parse_mrz(
            format_td3(
                surname="DOE",
                given_names="",
                document_number="X1",
                issuing_state="D",
                nationality="D",
                birth_date=None,
                sex="X",
                expiry_date=date(2030, 1, 31),
            )
        )
        assert (parsed.surname, parsed.given_names, parsed.document_number) == ("DOE", "", "X1")
        assert (parsed.birth_date, parsed.sex, parsed.issuing_state) == (None, "X", "D")


class TestNormaliseName:
    @pytest.mark.parametrize(
        ("written", "normalised"),
        [
            ("Eriksson", "ERIKSSON"),
            ("Élodie", "ELODIE"),
            ("José María", "JOSE MARIA"),
            ("Müller-Lüdenscheidt", "MULLER LUDENSCHEIDT"),
            ("Straße", "STRASSE"),
            ("GROẞ", "GROSS"),
            ("Ærø", "AERO"),
            ("Øster", "OSTER"),
            ("Œuvray", "OEUVRAY"),
            ("Þórður", "THORDUR"),
            ("Guðmundsdóttir", "GUDMUNDSDOTTIR"),
            ("Ðorđe Đurić", "DORDE DURIC"),
            ("Ħal-Għaxaq", "HAL GHAXAQ"),
            ("Łukasz Wałęsa", "LUKASZ WALESA"),
            ("Y\u0131ld\u0131z", "YILDIZ"),  # dotless i
            ("İsmail", "ISMAIL"),
            ("Nguyễn", "NGUYEN"),
            ("O'Neil", "ONEIL"),
            ("D\u2019Artagnan", "DARTAGNAN"),
            ("St. John", "ST JOHN"),
            ("Smith, Jr.", "SMITH JR"),
            ("VAN<DER<BERG", "VAN DER BERG"),
            ("ERIKSSON<<ANNA<MARIA", "ERIKSSON ANNA MARIA"),
            ("  de   la\tCruz  ", "DE LA CRUZ"),
            ("Anna\u2013Lena", "ANNA LENA"),
            ("\uff21\uff4e\uff4e\uff41", "ANNA"),  # full-width letters
            ("", ""),
            (" - ", ""),
        ],
    )
    def test_examples(self, written: str, normalised: str) -> None:
        assert normalise_name(written) == normalised

    @pytest.mark.parametrize("written", ["Иван", "R2D2", "Anna+Bob", "王", "Ana\u00a9", "1"])
    def test_what_does_not_reduce_to_a_z_is_refused(self, written: str) -> None:
        with pytest.raises(ValueError, match=r"U\+[0-9A-F]{4}"):
            normalise_name(written)

    def test_the_error_does_not_repeat_the_name(self) -> None:
        with pytest.raises(ValueError, match="U\\+0032") as caught:
            normalise_name("Eriksson 2")
        assert "ERIKSSON" not in str(caught.value).upper()

    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_the_result_is_normal_or_refused(self, text: str) -> None:
        try:
            name = normalise_name(text)
        except ValueError:
            return
        assert set(name) <= set(mrz_cases.LETTERS + " ")
        assert "  " not in name
        assert name == name.strip()
        assert normalise_name(name) == name

    def test_what_the_parser_returns_is_already_normal(self) -> None:
        for fmt in FORMATS:
            for case in mrz_cases.corpus(fmt, 20, seed=11):
                mrz = parse_mrz(case.text, today=mrz_cases.CORPUS_TODAY)
                assert normalise_name(mrz.surname) == mrz.surname
                assert normalise_name(mrz.given_names) == mrz.given_names


def name_field(surname: str, given_names: str, fmt: FormatName) -> str:
    """The name as Doc 9303 prints it, cut to the format's name field (written out here,
    not taken from the module)."""
    written = surname.replace(" ", "<") + "<<" + given_names.replace(" ", "<")
    return written[: mrz_cases.NAME_WIDTH[fmt]]


def parsed_name(surname: str, given_names: str, fmt: FormatName) -> tuple[str, str]:
    """What the parser returns for a document of format ``fmt`` with this holder's name."""
    if fmt == "TD3":
        text = format_td3(
            surname=surname,
            given_names=given_names,
            document_number="L898902C3",
            issuing_state="UTO",
            nationality="UTO",
            birth_date=date(1974, 8, 12),
            sex="F",
            expiry_date=date(2032, 4, 15),
        )
    else:
        text = compose(fmt, name=name_field(surname, given_names, fmt))
    mrz = parse(text)
    return mrz.surname, mrz.given_names


LONG_SURNAME = "WOLFESCHLEGELSTEINHAUSENBERGERDORFF"  # 35 letters


class TestMrzNameForms:
    def test_a_short_name_has_one_form(self) -> None:
        assert mrz_name_forms("Eriksson", "Anna María") == {("ERIKSSON", "ANNA MARIA")}

    @pytest.mark.parametrize("fmt", FORMATS)
    @pytest.mark.parametrize(
        ("surname", "given_names"),
        [
            pytest.param("Eriksson", "Anna Maria", id="short"),
            pytest.param(LONG_SURNAME, "Hubert Blaine", id="surname longer than TD1"),
            pytest.param("Papadopoulou", "Alexandra Konstantina Evangelia", id="long given"),
            pytest.param("A" * 29, "Bob", id="cut inside the double filler in TD1"),
            pytest.param("A" * 28, "Bob", id="cut right after the double filler in TD1"),
            pytest.param("A" * 30, "Bob", id="surname filling TD1"),
            pytest.param("A" * 37, "Bob", id="cut inside the double filler in TD3"),
            pytest.param("Ng", "Anna Maria Theresa Josefine Xaviera", id="cut after a filler"),
            pytest.param("de la Cruz-Olmedo", "María José", id="several components"),
            pytest.param("Smith", "", id="no given names"),
        ],
    )
    def test_what_the_parser_returns_is_a_form(
        self, surname: str, given_names: str, fmt: FormatName
    ) -> None:
        forms = mrz_name_forms(surname, given_names)
        holder = normalise_name(surname), normalise_name(given_names)
        assert holder in forms
        assert parsed_name(*holder, fmt) in forms

    def test_a_long_name_as_each_format_cuts_it(self) -> None:
        forms = mrz_name_forms(LONG_SURNAME.title(), "Hubert Blaine")
        assert (
            forms
            == {
                (LONG_SURNAME, "HUBERT BLAINE"),
                (LONG_SURNAME[:30], ""),  # TD1: 30 characters of surname, no given names
                (LONG_SURNAME[:31], ""),  # TD2 and MRV-B
                (LONG_SURNAME, "HU"),  # TD3 and MRV-A: 35 + "<<" + 2
            }
        )
        assert parsed_name(LONG_SURNAME, "HUBERT BLAINE", "TD1") == (LONG_SURNAME[:30], "")
        assert parsed_name(LONG_SURNAME, "HUBERT BLAINE", "TD3") == (LONG_SURNAME, "HU")

    def test_a_cut_inside_the_double_filler_loses_the_given_names(self) -> None:
        # 29 letters and one "<" of the two: TD1 reads it as a surname alone.
        assert parsed_name("A" * 29, "BOB", "TD1") == ("A" * 29, "")
        assert ("A" * 29, "") in mrz_name_forms("A" * 29, "Bob")

    def test_a_cut_after_a_filler_leaves_no_empty_word(self) -> None:
        surname = "ABCDEFGHIJKLMNOPQRSTUV"  # 22 letters
        # TD1 keeps 30 of "ABCDEFGHIJKLMNOPQRSTUV<<ANNAM<ARIA": it ends in the "<" after
        # ANNAM; TD2 keeps one letter more.
        assert name_field(surname, "ANNAM ARIA", "TD1").endswith("ANNAM<")
        assert parsed_name(surname, "ANNAM ARIA", "TD1") == (surname, "ANNAM")
        assert mrz_name_forms(surname, "Annam Aria") == {
            (surname, "ANNAM ARIA"),
            (surname, "ANNAM"),
            (surname, "ANNAM A"),
        }

    def test_names_that_do_not_normalise_are_refused(self) -> None:
        with pytest.raises(ValueError, match="U\\+0418"):
            mrz_name_forms("Иванов", "Ivan")

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.text(alphabet=mrz_cases.LETTERS, min_size=1, max_size=14), max_size=4),
        st.lists(st.text(alphabet=mrz_cases.LETTERS, min_size=1, max_size=14), max_size=4),
        st.sampled_from(FORMATS),
    )
    def test_every_parsed_cut_is_a_form(
        self, surnames: list[str], given: list[str], fmt: FormatName
    ) -> None:
        surname, given_names = " ".join(surnames), " ".join(given)
        assert parsed_name(surname, given_names, fmt) in mrz_name_forms(surname, given_names)

"""Schemas of the visa routes: visas and MRZ parsing."""

import re
from datetime import date, datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from visa.policy import IcaoCode
from visa.rules import Entries, VisaStatus, VisaType

# Schengen short-stay (C) visas authorise at most 90 days of stay (Visa Code, art. 24);
# longer stays are what national long-stay (D) visas are for.
SHORT_STAY_MAX_DAYS = 90
# No visa is valid for more than ten years; the bound also keeps every date the rules
# compute from a visa (its last day of stay) inside the calendar.
MAX_VALIDITY_DAYS = 3653
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)


def _entries_from_number(value: object) -> object:
    # "1", "2" and "MULT" are the codes printed on visas; the JSON numbers 1 and 2 are
    # accepted too, since a client may well send the count. bool is an int: not accepted.
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
        return str(value)
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: object) -> object:
    # DESIGN §5: dates are ISO "YYYY-MM-DD". Left to itself pydantic would also read Unix
    # timestamps and datetimes as dates, which is not what these fields mean. (Strict mode
    # cannot say this: FastAPI validates the decoded JSON, where a date is still a string.)
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
EntriesIn = Annotated[Entries, BeforeValidator(_entries_from_number)]


class VisaIn(BaseModel):
    """A visa to issue. Dates are inclusive; the span checks follow the Schengen Visa Code:
    the duration of stay fits in the validity, and a type C visa allows at most 90 days."""

    model_config = ConfigDict(extra="forbid")

    person_id: UUID
    visa_type: VisaType
    issuing_state: IcaoCode
    valid_from: IsoDate
    valid_until: IsoDate
    entries: EntriesIn
    duration_of_stay_days: Annotated[int, Field(strict=True, gt=0)]

    @model_validator(mode="after")
    def _spans(self) -> Self:
        for name, day in (("valid_from", self.valid_from), ("valid_until", self.valid_until)):
            if not EARLIEST <= day <= LATEST:
                raise ValueError(f"{name} ({day}) must lie between {EARLIEST} and {LATEST}")
        if self.valid_until < self.valid_from:
            raise ValueError(
                f"valid_until ({self.valid_until}) is before valid_from ({self.valid_from})"
            )
        validity = (self.valid_until - self.valid_from).days + 1
        if validity > MAX_VALIDITY_DAYS:
            raise ValueError(
                f"a visa is valid for at most {MAX_VALIDITY_DAYS} days, not {validity}"
            )
        if self.duration_of_stay_days > validity:
            raise ValueError(
                f"duration_of_stay_days ({self.duration_of_stay_days}) is longer than the "
                f"{validity} day(s) from valid_from to valid_until"
            )
        if self.visa_type == "C" and self.duration_of_stay_days > SHORT_STAY_MAX_DAYS:
            raise ValueError(
                f"a type C (short-stay) visa allows at most {SHORT_STAY_MAX_DAYS} days of "
                f"stay, not {self.duration_of_stay_days}; use type D for a long stay"
            )
        return self


class VisaOut(BaseModel):
    """A visa as the persons endpoint lists it."""

    visa_id: UUID
    number: str
    visa_type: VisaType
    issuing_state: str
    valid_from: date
    valid_until: date
    entries: Entries
    duration_of_stay_days: int
    status: VisaStatus
    issued_at: datetime
    revoked_at: datetime | None


class VisaRecord(VisaOut):
    """A visa as issue and revoke return it: with its holder and who issued or revoked it."""

    person_id: UUID
    issued_by: str
    revoked_by: str | None


class MrzIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Three lines of 30 or two of 44 with their line breaks fit well within 400 characters;
    # anything longer is not an MRZ and is refused before parsing.
    mrz: Annotated[str, Field(strict=True, min_length=1, max_length=400)]


class MrzOut(BaseModel):
    """Every field of a valid MRZ (see ``visa.mrz.MRZ``)."""

    format: str
    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: date | None
    sex: str
    expiry_date: date | None
    optional_data: str
    optional_data_1: str
    optional_data_2: str


class AnchorOut(BaseModel):
    """A CSCA certificate in the chip's trust store."""

    anchor_id: UUID
    country: str = Field(description="ICAO 9303 code of its state (D for Germany)")
    subject: str
    not_before: datetime
    not_after: datetime
    sha256: str = Field(description="SHA-256 of the certificate (DER), hex")
    source: Literal["certificate", "master_list"]
    imported_at: datetime


class CrlOut(BaseModel):
    crl_id: UUID
    anchor_id: UUID
    issuer: str
    this_update: datetime
    next_update: datetime | None
    revoked: int = Field(description="how many certificates it revokes")
    sha256: str


class PkiOut(BaseModel):
    anchors: list[AnchorOut]
    crls: list[CrlOut]


class PkiImported(BaseModel):
    """What an import added; ``already_held`` counts certificates and lists held before,
    ``skipped`` the certificates of a master list that are no CSCA of a known state."""

    kind: Literal["certificates", "crl", "master_list", "pem"]
    anchors_added: int
    crls_added: int
    already_held: int
    skipped: int

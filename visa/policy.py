"""The border policy (DESIGN §6, §10): who needs a visa, the short-stay allowance and the
document validity asked for at entry.

An admin replaces the shipped ``default_policy.toml`` with their own file (path in
``BORDER_POLICY_FILE``). The fields of the first stage must be given: a policy that silently
fell back to a default for a forgotten line would admit or refer people on rules nobody
wrote down. Keys added since (DESIGN §10) are optional and take the default DESIGN gives,
so that a policy file written for the first stage still loads.
"""

import tomllib
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from core.errors import ConfigurationError

DEFAULT_POLICY_FILE = Path(__file__).parent / "default_policy.toml"

_CODE_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _icao_code(value: str) -> str:
    # ICAO 9303 state codes are three letters, except the one- and two-letter legacy codes
    # (Germany is "D"); the MRZ parser returns them without "<" fillers, so neither may we.
    if not 1 <= len(value) <= 3 or not set(value) <= _CODE_LETTERS:
        raise ValueError('expected an ICAO 9303 code of 1 to 3 uppercase letters A-Z, like "UTO"')
    return value


IcaoCode = Annotated[str, Field(strict=True), AfterValidator(_icao_code)]
# Strict: TOML already types its values, so a quoted "90" or a bare 2026.1 is a mistake in
# the file, not something to coerce.
PositiveDays = Annotated[int, Field(strict=True, gt=0)]
NonNegativeDays = Annotated[int, Field(strict=True, ge=0)]
# As an API client's border point is written.
BorderPoint = Annotated[
    str, Field(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
]


class Statistics(BaseModel):
    """``[statistics]`` (DESIGN §12): a cell counting fewer than ``min_cell`` crossings is
    published as suppressed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_cell: Annotated[int, Field(strict=True, ge=1, le=1000)] = 5


class Retention(BaseModel):
    """``[retention]`` (DESIGN §12): how long a person's file is kept after their last
    crossing, by what it holds; host nationals' captures and crossings go after days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crossing_years: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    overstayer_years: Annotated[int, Field(strict=True, ge=1, le=100)] = 5
    refusal_years: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    national_capture_days: Annotated[int, Field(strict=True, ge=0, le=36_500)] = 1
    national_crossing_days: Annotated[int, Field(strict=True, ge=0, le=36_500)] = 1


class Policy(BaseModel):
    """The rules in force. ``rule_set`` is recorded with every decision taken under them.

    ``min_document_validity_days`` (optional, default 90): at entry, a non-national's
    document must stay valid at least this many days after the entry day; 0 asks only that
    it has not expired.

    ``border_points`` (optional, default none): the border points the state runs, as API
    clients name them. The metrics label crossings with these names, any other as
    ``other``, so that no caller can add series.

    ``chip_required`` (optional, default none): nationalities (ICAO codes) whose travellers
    must present their passport's chip at a kiosk (DESIGN §16); a crossing of one without
    the chip's files is referred with ``CHIP_NOT_PRESENTED``.

    ``[statistics]`` and ``[retention]`` (optional tables, defaults as DESIGN §12 gives
    them): see :class:`Statistics` and :class:`Retention`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host_state: IcaoCode
    rule_set: Annotated[str, Field(strict=True, min_length=1)]
    max_stay_days: PositiveDays
    window_days: PositiveDays
    adult_age: Annotated[int, Field(strict=True, ge=1, le=30)]
    visa_exempt: tuple[IcaoCode, ...]
    min_document_validity_days: NonNegativeDays = 90
    border_points: tuple[BorderPoint, ...] = ()
    chip_required: tuple[IcaoCode, ...] = ()
    statistics: Statistics = Statistics()
    retention: Retention = Retention()

    @model_validator(mode="after")
    def _allowance_fits_window(self) -> Self:
        if self.max_stay_days > self.window_days:
            raise ValueError(
                f"max_stay_days ({self.max_stay_days}) must not exceed "
                f"window_days ({self.window_days})"
            )
        return self

    def is_national(self, nationality: str) -> bool:
        """Whether ``nationality`` (an ICAO code as the MRZ gives it) is the host state's."""
        return nationality == self.host_state

    def needs_visa(self, nationality: str) -> bool:
        """True unless the traveller is a national or of a visa-exempt nationality."""
        return not self.is_national(nationality) and nationality not in self.visa_exempt

    def needs_chip(self, nationality: str) -> bool:
        """Whether travellers of ``nationality`` must present their passport's chip."""
        return nationality in self.chip_required


def load_policy(path: Path | None = None) -> Policy:
    """Read and check a policy file; None reads the default shipped with the project.

    Raises ``ConfigurationError`` naming the file, and for bad values every bad field with
    what it expects.
    """
    source = DEFAULT_POLICY_FILE if path is None else path
    try:
        with source.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(
            f"policy file {source} does not exist; point BORDER_POLICY_FILE at a TOML policy "
            "file or unset it to use the default"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"policy file {source} cannot be read: {exc.strerror or exc}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"policy file {source} is not valid TOML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise ConfigurationError(f"policy file {source} is invalid: {problems}") from None


def _describe(error: ErrorDetails) -> str:
    field = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    ).lstrip(".")
    if error["type"] == "missing":
        return f"{field}: missing; this field is required (it has no default)"
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field; the fields are {', '.join(Policy.model_fields)}"
    message = error["msg"].removeprefix("Value error, ")
    if not field:
        # A check across fields: its message names them itself.
        return message
    return f"{field}: {message}, got {error['input']!r}"

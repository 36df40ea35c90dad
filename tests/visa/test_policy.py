from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ConfigurationError
from visa import policy

GOOD = """\
host_state = "ATL"
rule_set = "test-7"
max_stay_days = 30
window_days = 60
adult_age = 21
visa_exempt = ["FRA", "D", "NZ"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def with_line(name: str, value: str) -> str:
    """GOOD with one field's line replaced, or dropped when ``value`` is empty."""
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"{name} =")]
    if value:
        lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n"


class TestLoadPolicy:
    def test_the_default_policy_ships_with_the_design_values(self) -> None:
        loaded = policy.load_policy(None)
        assert loaded == policy.Policy(
            host_state="UTO",
            rule_set="2026.1",
            max_stay_days=90,
            window_days=180,
            adult_age=18,
            visa_exempt=("GBR", "USA", "D"),
            min_document_validity_days=90,
            border_points=("UTO-AIR-1", "UTO-LAND-1", "UTO-SEA-1"),
        )
        assert policy.load_policy() == loaded
        assert policy.DEFAULT_POLICY_FILE.parent == Path(policy.__file__).parent

    def test_border_points_are_optional_and_named_as_clients_name_them(
        self, tmp_path: Path
    ) -> None:
        assert policy.load_policy(write(tmp_path, GOOD)).border_points == ()
        named = policy.load_policy(write(tmp_path, with_line("border_points", '["A-1", "b.2"]')))
        assert named.border_points == ("A-1", "b.2")
        for bad in ('["has space"]', '[""]', '"A-1"', "[1]", f'["{"x" * 65}"]'):
            with pytest.raises(ConfigurationError):
                policy.load_policy(write(tmp_path, with_line("border_points", bad)))

    def test_chip_required_is_optional_and_holds_icao_codes(self, tmp_path: Path) -> None:
        loaded = policy.load_policy(write(tmp_path, GOOD))
        assert loaded.chip_required == ()
        assert not loaded.needs_chip("D")
        named = policy.load_policy(write(tmp_path, with_line("chip_required", '["D", "GBR"]')))
        assert named.chip_required == ("D", "GBR")
        assert named.needs_chip("D")
        assert not named.needs_chip("FRA")
        for bad in ('["de"]', '["GERMANY"]', '"D"', "[1]"):
            with pytest.raises(ConfigurationError, match="chip_required"):
                policy.load_policy(write(tmp_path, with_line("chip_required", bad)))

    def test_a_custom_file_loads(self, tmp_path: Path) -> None:
        loaded = policy.load_policy(write(tmp_path, GOOD))
        assert (loaded.host_state, loaded.rule_set) == ("ATL", "test-7")
        assert (loaded.max_stay_days, loaded.window_days, loaded.adult_age) == (30, 60, 21)
        assert loaded.visa_exempt == ("FRA", "D", "NZ")

    def test_the_default_file_writes_the_optional_key_out(self) -> None:
        # Shown with its value, so an admin copying the file sees what they may change.
        text = policy.DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
        assert "\nmin_document_validity_days = 90\n" in text

    def test_a_first_stage_file_loads_with_the_default_validity(self, tmp_path: Path) -> None:
        assert "min_document_validity_days" not in GOOD
        loaded = policy.load_policy(write(tmp_path, GOOD))
        assert loaded.min_document_validity_days == 90

    @pytest.mark.parametrize("days", [0, 1, 180])
    def test_a_document_validity_is_read(self, tmp_path: Path, days: int) -> None:
        path = write(tmp_path, with_line("min_document_validity_days", str(days)))
        assert policy.load_policy(path).min_document_validity_days == days

    def test_an_allowance_as_long_as_the_window_is_accepted(self, tmp_path: Path) -> None:
        loaded = policy.load_policy(write(tmp_path, with_line("max_stay_days", "60")))
        assert loaded.max_stay_days == loaded.window_days == 60

    def test_a_missing_file_is_named(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere.toml"
        with pytest.raises(ConfigurationError, match=rf"policy file {missing} does not exist"):
            policy.load_policy(missing)

    def test_a_directory_is_not_a_policy(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match=rf"policy file {tmp_path} cannot be read"):
            policy.load_policy(tmp_path)

    def test_broken_toml_is_named_with_its_line(self, tmp_path: Path) -> None:
        path = write(tmp_path, 'host_state = "UTO\nrule_set = "x"\n')
        with pytest.raises(ConfigurationError, match=r"is not valid TOML: .*line 1") as caught:
            policy.load_policy(path)
        assert str(path) in str(caught.value)

    def test_a_file_that_is_not_utf8_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.toml"
        path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
        with pytest.raises(ConfigurationError, match="is not valid TOML"):
            policy.load_policy(path)

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            pytest.param(
                "colour",
                '"blue"',
                r"colour: unknown field; the fields are host_state, ",
                id="extra",
            ),
            pytest.param(
                "max_stay_days",
                "61",
                r"max_stay_days \(61\) must not exceed window_days \(60\)",
                id="allowance over window",
            ),
            pytest.param(
                "host_state",
                '"uto"',
                r"host_state: expected an ICAO 9303 code of 1 to 3 uppercase letters A-Z.*'uto'",
                id="lowercase host",
            ),
            pytest.param(
                "host_state", '"UTOP"', r"host_state: expected an ICAO 9303 code", id="long code"
            ),
            pytest.param("host_state", '""', r"host_state: expected an ICAO", id="empty code"),
            pytest.param("host_state", '"U<O"', r"host_state: expected an ICAO", id="filler"),
            pytest.param(
                "visa_exempt",
                '["GBR", "usa"]',
                r"visa_exempt\[1\]: expected an ICAO 9303 code.*'usa'",
                id="lowercase exempt",
            ),
            pytest.param("visa_exempt", '"GBR"', r"visa_exempt: .*tuple", id="exempt not a list"),
            pytest.param(
                "window_days", "-5", r"window_days: .*greater than 0, got -5", id="negative"
            ),
            pytest.param("max_stay_days", "0", r"max_stay_days: .*greater than 0", id="zero"),
            pytest.param("max_stay_days", '"30"', r"max_stay_days: .*integer", id="quoted number"),
            pytest.param("max_stay_days", "30.0", r"max_stay_days: .*integer", id="float"),
            pytest.param("adult_age", "0", r"adult_age: .*greater than or equal to 1", id="age 0"),
            pytest.param("adult_age", "31", r"adult_age: .*less than or equal to 30", id="age 31"),
            pytest.param(
                "rule_set",
                "",
                r"rule_set: missing; this field is required \(it has no default\)",
                id="missing rule_set",
            ),
            pytest.param("rule_set", '""', r"rule_set: .*at least 1 character", id="empty rule"),
            pytest.param("rule_set", "2026.1", r"rule_set: .*string", id="unquoted rule_set"),
            pytest.param(
                "min_document_validity_days",
                "-1",
                r"min_document_validity_days: .*greater than or equal to 0, got -1",
                id="negative validity",
            ),
            pytest.param(
                "min_document_validity_days",
                '"90"',
                r"min_document_validity_days: .*integer, got '90'",
                id="quoted validity",
            ),
            pytest.param(
                "min_document_validity_days",
                "90.0",
                r"min_document_validity_days: .*integer",
                id="fractional validity",
            ),
            pytest.param(
                "min_document_validity_days",
                "true",
                r"min_document_validity_days: .*integer",
                id="boolean validity",
            ),
        ],
    )
    def test_bad_values_are_named(
        self, tmp_path: Path, name: str, value: str, message: str
    ) -> None:
        path = write(tmp_path, with_line(name, value))
        with pytest.raises(ConfigurationError, match=message) as caught:
            policy.load_policy(path)
        assert str(caught.value).startswith(f"policy file {path} is invalid: ")

    def test_every_bad_field_is_reported_at_once(self, tmp_path: Path) -> None:
        text = with_line("adult_age", "99").replace('"ATL"', '"atl"')
        with pytest.raises(ConfigurationError) as caught:
            policy.load_policy(write(tmp_path, text))
        assert "host_state:" in str(caught.value)
        assert "adult_age:" in str(caught.value)


class TestPolicyModel:
    def test_it_is_frozen(self) -> None:
        loaded = policy.load_policy()
        with pytest.raises(ValidationError):
            loaded.max_stay_days = 100


class TestNeedsVisa:
    @pytest.mark.parametrize(
        ("nationality", "national", "needs_visa"),
        [
            ("UTO", True, False),
            ("GBR", False, False),
            ("USA", False, False),
            ("D", False, False),
            ("FRA", False, True),
            ("DEU", False, True),
            ("", False, True),
        ],
    )
    def test_default_policy(self, nationality: str, national: bool, needs_visa: bool) -> None:
        loaded = policy.load_policy()
        assert loaded.is_national(nationality) is national
        assert loaded.needs_visa(nationality) is needs_visa

    def test_the_host_state_needs_no_listing(self, tmp_path: Path) -> None:
        loaded = policy.load_policy(write(tmp_path, with_line("visa_exempt", "[]")))
        assert loaded.needs_visa("ATL") is False
        assert loaded.needs_visa("FRA") is True

"""Service settings, read from the environment (prefix ``BORDER_``) or passed in by tests."""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class QualityThresholds(BaseModel):
    """Capture quality limits of one profile (see enrollment/quality.py for how each is
    measured, docs/biometrics.md for the study behind each default). A measure whose limit
    is at its loosest end (0 for a minimum, 255, 1 or 180 for a maximum) never refuses: it
    is still measured and reported. These defaults are the enrollment profile's."""

    model_config = ConfigDict(extra="forbid")

    min_eye_distance_px: float = Field(default=32.0, ge=0)
    min_sharpness: float = Field(
        default=4.0, ge=0, description="Laplacian variance per unit of grey variance, x100"
    )
    min_brightness: float = Field(default=50.0, ge=0, le=255, description="mean grey, 0-255")
    max_brightness: float = Field(default=215.0, ge=0, le=255)
    max_clipped_share: float = Field(
        default=0.4, ge=0, le=1, description="share of face pixels at 0-5 or 250-255"
    )
    min_contrast: float = Field(default=18.0, ge=0, description="grey standard deviation")
    max_pose_deg: float = Field(default=35.0, gt=0, le=180, description="yaw or roll, degrees")
    max_cut_off_share: float = Field(
        default=0.15, ge=0, le=1, description="share of the face box outside the frame"
    )

    def stricter_than(self, other: "QualityThresholds") -> list[str]:
        """The limits of ``self`` that are stricter than ``other``'s: empty when ``self``
        refuses nothing ``other`` accepts."""
        stricter = []
        for name in type(self).model_fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            if (mine > theirs) if name.startswith("min_") else (mine < theirs):
                stricter.append(name)
        return stricter


class KioskQualityThresholds(QualityThresholds):
    """The kiosk profile (crossings, 1:1 verify, 1:N identify, a document's live face): a
    probe compared once, not a reference kept for years. Chosen by
    benchmarks/bench_quality.py (docs/biometrics.md): face size, exposure, contrast and pose
    refused only probes that still matched, so they are advisory here (loosest end);
    sharpness keeps a floor where blur brought impostors near the verify threshold;
    cut-off, which the study does not vary, keeps enrollment's limit."""

    min_eye_distance_px: float = Field(default=0.0, ge=0)
    min_sharpness: float = Field(default=0.55, ge=0)
    min_brightness: float = Field(default=0.0, ge=0, le=255)
    max_brightness: float = Field(default=255.0, ge=0, le=255)
    max_clipped_share: float = Field(default=1.0, ge=0, le=1)
    min_contrast: float = Field(default=0.0, ge=0)
    max_pose_deg: float = Field(default=180.0, gt=0, le=180)
    max_cut_off_share: float = Field(default=0.15, ge=0, le=1)


class QualityProfiles(BaseModel):
    """The two quality profiles (DESIGN §17), each set per measure with
    ``BORDER_QUALITY__KIOSK__<MEASURE>`` or ``BORDER_QUALITY__ENROLLMENT__<MEASURE>``. The
    kiosk's is never stricter than enrollment's."""

    model_config = ConfigDict(extra="forbid")

    enrollment: QualityThresholds = Field(default_factory=QualityThresholds)
    kiosk: KioskQualityThresholds = Field(default_factory=KioskQualityThresholds)

    @model_validator(mode="before")
    @classmethod
    def _no_flat_thresholds(cls, data: object) -> object:
        # BORDER_QUALITY__<MEASURE> set both profiles' limit before there were two; read
        # silently it would now do nothing, so it is refused, with what replaces it.
        if isinstance(data, dict):
            flat = sorted(k for k in data if k in QualityThresholds.model_fields)
            if flat:
                raise ValueError(
                    "; ".join(
                        f"BORDER_QUALITY__{k.upper()} is no longer read: set "
                        f"BORDER_QUALITY__ENROLLMENT__{k.upper()} and/or "
                        f"BORDER_QUALITY__KIOSK__{k.upper()}"
                        for k in flat
                    )
                )
        return data

    @model_validator(mode="after")
    def _kiosk_never_stricter(self) -> "QualityProfiles":
        stricter = self.kiosk.stricter_than(self.enrollment)
        if stricter:
            raise ValueError(
                "the kiosk profile may not be stricter than enrollment's: "
                + ", ".join(
                    f"BORDER_QUALITY__KIOSK__{n.upper()} against "
                    f"BORDER_QUALITY__ENROLLMENT__{n.upper()}"
                    for n in stricter
                )
            )
        return self


class Settings(BaseSettings):
    """Everything the service, the CLI and the tests configure. Nothing reads the environment
    except through this class, and nothing builds a resource when it is constructed."""

    model_config = SettingsConfigDict(
        env_prefix="BORDER_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path("var"),
        description="Embedded database, master key file and gallery snapshots live here.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; unset means the embedded server under data_dir/pg.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description=(
            "Master key ring from a secret store: 'VERSION:BASE64KEY' entries joined by commas,"
            " or one bare base64 key (version 1). Unset means data_dir/master.key."
        ),
    )
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    pool_timeout_s: float = Field(
        default=5.0, gt=0, description="Wait for a free connection before answering 503."
    )
    log_level: str = Field(default="INFO", description="also uvicorn's")
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="log lines: JSON objects, or text; auto: text on a terminal"
    )
    auth_max_failures: int = Field(
        default=10, ge=1, description="failed authentications per address or key per window"
    )
    auth_failure_window_s: float = Field(default=60.0, gt=0)
    trusted_proxies: str = Field(
        default="",
        description="addresses or networks (comma-separated) whose X-Forwarded-For is believed;"
        " none by default",
    )
    body_max_bytes: int = Field(
        default=16_000_000, gt=0, description="request bodies past this are refused unread"
    )

    image_max_bytes: int = Field(default=15_000_000, gt=0, description="upload size limit")
    image_max_pixels: int = Field(
        # OpenCV refuses frames past about 2^30 pixels on its own, with an error of its own.
        default=40_000_000,
        gt=0,
        le=1 << 30,
        description="declared width x height limit",
    )
    image_max_decoded_bytes: int = Field(
        default=160_000_000,
        gt=0,
        description="decoding budget: width x height x channels x bytes per sample",
    )
    image_decode_concurrency: int = Field(
        default=2, ge=1, description="images decoded at once per process"
    )
    face_detector: Literal["hog", "cnn"] = "hog"
    face_detect_size: int = Field(
        default=320,
        ge=160,
        description="longer side of the copy faces are detected on (twice that when it shows none)",
    )
    quality: QualityProfiles = Field(default_factory=QualityProfiles)

    # Distances are Euclidean between unit-length templates (matching/gallery.py): one
    # person's photos lie 0.17-0.29 apart, different people 0.45 and more.
    verify_threshold: float = Field(default=0.40, gt=0, lt=2, description="1:1 match")
    identify_threshold: float = Field(
        default=0.34, gt=0, lt=2, description="1:N and dedup, for a gallery of 10,000"
    )
    identify_threshold_per_decade: float = Field(
        default=0.015,
        ge=0,
        description="tightening of the 1:N threshold for each tenfold growth past 10,000",
    )
    workers: int = Field(
        default=1, ge=1, description="worker processes `border serve` runs: one per core"
    )
    gallery_backend: Literal["faiss", "milvus"] = Field(
        default="faiss",
        description="faiss: galleries in each process, sealed snapshots; milvus: one shared "
        "copy in Milvus (DESIGN §13)",
    )
    milvus_uri: str | None = Field(
        default=None,
        description="a file path runs Milvus Lite in the one process (it locks the file); "
        "http://host:19530 a Milvus server every worker and node shares; unset: "
        "data_dir/galleries/milvus.db",
    )
    milvus_token: SecretStr | None = Field(
        default=None, description="Milvus credentials, 'user:password' or an API key"
    )
    milvus_collection_prefix: str = Field(
        default="border",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$",
        description="the galleries are <prefix>_enrolled and <prefix>_watchlist",
    )
    milvus_index: Literal[
        "auto", "FLAT", "IVF_FLAT", "HNSW", "GPU_BRUTE_FORCE", "GPU_IVF_FLAT", "GPU_CAGRA"
    ] = Field(
        default="auto",
        description="auto: FLAT on Milvus Lite, HNSW on a server; GPU_* need GPU query nodes",
    )
    milvus_timeout_s: int = Field(
        default=10, ge=1, le=300, description="a Milvus call gives up after this long: 503"
    )
    gallery_index: Literal["auto", "flat", "ivf"] = "auto"
    gallery_ivf_min_size: int = Field(default=50_000, ge=1000)
    gallery_nprobe: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        default="auto",
        description="IVF lists probed per query: `auto` follows the index (matching.gallery."
        "nprobe_for: a tenth of the lists up to 1M templates, recall 0.995), a number overrides",
    )
    gallery_search_threads: int = Field(
        default=1,
        ge=1,
        description="cores one 1:N search may use; 1 suits a busy service, more lowers the "
        "latency of a single search on idle cores (and splits an exact search)",
    )

    policy_file: Path | None = Field(
        default=None, description="visa and stay policy (TOML); unset: the one shipped"
    )
    timezone: str = Field(default="UTC", description="host time zone: stay days are its days")
    clock_skew_s: float = Field(
        default=60.0, ge=0, description="how far in the future a crossing's `at` may lie"
    )
    kiosk_max_backdate_h: float = Field(
        default=72.0, ge=0, description="how far back a kiosk's `at` may lie, in hours"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where staff reach the service (behind the TLS proxy): activation links "
        "start with it",
    )
    session_idle_s: float = Field(
        default=900.0, gt=0, description="a console session ends after this long unused"
    )
    session_max_s: float = Field(
        default=28_800.0, gt=0, description="a console session ends this long after sign-in"
    )
    owner_database_url: SecretStr | None = Field(
        default=None,
        description="the schema owner's URL, for `border db migrate` (and `serve` when set)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

"""Capture quality against match outcomes (DESIGN §17): which refusals a quality profile
makes that matching would not have needed, and which measures predict a failed match.

    uv run python benchmarks/bench_quality.py [--faces DIR] [--tiny] [--json OUT]

The photos are a folder of labelled faces: either ``labels.csv`` in it (``file,person``
and optionally ``capture``: files of one capture, such as one photo at several sizes, are
never paired with each other and only the first is used), or one sub-folder per person
(each file its own capture). The default is the project's ``samples/faces``: three
captures of one person and one each of two others, so 6 genuine and 14 impostor ordered
pairs. It is a thin set: every figure below says how many pairs it stands on, and a site
reruns the study on its own photos with ``--faces``.

Each capture is framed as a kiosk camera frames a traveller (640x480, the face box a third
of the width) and then degraded one way at a time, over DESIGN §17's ranges: Gaussian blur
sigma 1.5-6 px, the face at 50%-20% of its size (the traveller further away: a wider field of
view resampled into the same frame), gain 0.3-1.6, roll 15°-30° either way, JPEG quality
5-30 and Gaussian noise sigma 15-35. Every degraded probe is compared with the enrolled
photo of every other capture (1:1, unit-length templates, the verify threshold).

A probe is *referred for its face* when no face is found (FACE_NOT_DETECTED), the profile
refuses it (FACE_QUALITY_LOW; two faces count here too) or it lies beyond the verify
threshold of the claimed person's capture (FACE_MISMATCH). The profiles compared are
today's single set (the peer: the thresholds before DESIGN §17), and the ``kiosk`` and
``enrollment`` profiles of the settings in force (``BORDER_QUALITY__…``), so a site sees
what its own thresholds do.

Per measure, the error-versus-reject characteristic (ISO/IEC 29794-1): the false
non-match rate at the verify threshold of the genuine pairs kept after rejecting the worst
share of probes by that measure. For enrollment, the same degraded images are taken as the
*reference* a person is enrolled with, and each is scored by the share of later kiosk
probes (every degraded probe of the person's other captures that the kiosk profile
accepts) it fails to match: that is what an enrollment threshold protects.

PNG plots go to ``--out`` (benchmarks/results/), the rows to ``--json``.
"""

import argparse
import csv
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from benchmarks import common
from core.settings import QualityThresholds, Settings
from enrollment import capture, intake, quality
from enrollment.intake import RGBImage
from enrollment.templates import Box, FaceModel

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "faces"
RESULTS = Path(__file__).resolve().parent / "results"
FRAME = (640, 480)  # a kiosk camera's frame, width x height
FACE_SHARE = 1 / 3  # the face box's share of the frame's width at the traveller's place
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}

# DESIGN §17's ranges. Gains near 1 degrade nothing and are left out.
LEVELS: dict[str, tuple[float, ...]] = {
    "blur": (1.5, 2.25, 3.0, 3.75, 4.5, 5.25, 6.0),
    "scale": (0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2),
    "gain": (0.3, 0.4, 0.5, 0.6, 0.7, 1.3, 1.4, 1.5, 1.6),
    "roll": (15.0, 20.0, 25.0, 30.0, -15.0, -20.0, -25.0, -30.0),
    "jpeg": (5.0, 10.0, 15.0, 20.0, 25.0, 30.0),
    "noise": (15.0, 20.0, 25.0, 30.0, 35.0),
}
# One level a degradation, the harshest, for the test suite.
TINY: dict[str, tuple[float, ...]] = {
    "blur": (6.0,),
    "scale": (0.2,),
    "gain": (0.3,),
    "roll": (30.0,),
    "jpeg": (5.0,),
    "noise": (35.0,),
}
UNITS = {
    "blur": "sigma px",
    "scale": "x size",
    "gain": "x",
    "roll": "°",
    "jpeg": "quality",
    "noise": "sigma",
}

# The peer: the one set of thresholds every capture met before DESIGN §17.
TODAY = QualityThresholds(
    min_eye_distance_px=32.0,
    min_sharpness=4.0,
    min_brightness=50.0,
    max_brightness=215.0,
    max_clipped_share=0.4,
    min_contrast=18.0,
    max_pose_deg=35.0,
    max_cut_off_share=0.15,
)
# How bad a face is by each measure (higher is worse), for the ERC.
BADNESS: dict[str, Callable[[quality.Figures], float]] = {
    "face_too_small": lambda f: -f.eye_distance_px,
    "blurred": lambda f: -f.sharpness,
    "underexposed": lambda f: -f.brightness,
    "overexposed": lambda f: f.brightness,
    "low_contrast": lambda f: -f.contrast,
    "pose": lambda f: f.pose_deg,
    "face_cut_off": lambda f: f.cut_off_share,
}
COLUMNS = (
    "degradation",
    "probes",
    "genuine_pairs",
    "today_referred_pct",
    "kiosk_referred_pct",
    "enrollment_referred_pct",
    "today_quality_low",
    "kiosk_quality_low",
    "not_detected",
    "mismatched",
    "today_refused_but_matched",
    "genuine_median",
    "genuine_max",
    "impostor_min",
    "kiosk_impostor_min",
    "kiosk_impostors_accepted",
)
ERC_COLUMNS = (
    "measure",
    "today_flags",
    "today_flagged_mismatched",
    "kiosk_flags",
    "fnmr_at_0",
    "fnmr_reject_10pct",
    "fnmr_reject_20pct",
    "oracle_reject_10pct",
    "today_flagged_distance",
    "today_passed_distance",
    "enrollment_flags",
    "future_fnmr_flagged",
    "future_fnmr_passed",
    "future_distance_flagged",
    "future_distance_passed",
)
Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Photo:
    person: str
    capture: str
    path: Path


@dataclass
class Probe:
    """One image of a capture (degraded, or the enrolled photo itself) and what the face
    model made of it."""

    person: str
    capture: str
    kind: str  # a key of LEVELS, "none" for the framed capture, "enrolled" for the photo
    level: float
    faces: int = 0
    figures: quality.Figures | None = None
    template: Vector | None = None


@dataclass
class Study:
    probes: list[Probe]
    references: dict[str, Probe]  # capture -> the enrolled photo
    profiles: dict[str, QualityThresholds]
    threshold: float
    skipped: list[str] = field(default_factory=list)


def read_labels(folder: Path) -> list[Photo]:
    """The labelled photos of ``folder`` (see the module doc), one per capture."""
    labels = folder / "labels.csv"
    photos: list[Photo] = []
    if labels.exists():
        with labels.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name, person = row["file"].strip(), row["person"].strip()
                group = (row.get("capture") or "").strip() or name
                photos.append(Photo(person, group, folder / name))
    else:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            for path in sorted(sub.iterdir()):
                if path.suffix.lower() in PHOTO_SUFFIXES:
                    photos.append(Photo(sub.name, f"{sub.name}/{path.name}", path))
    first: dict[str, Photo] = {}
    for photo in photos:
        first.setdefault(photo.capture, photo)
    chosen = list(first.values())
    if len({p.person for p in chosen}) < 2:
        raise ValueError(f"{folder}: the study needs photos of at least two people")
    return chosen


def _unit(template: npt.NDArray[np.float32]) -> Vector:
    vector = template.astype(np.float64)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def _look(model: FaceModel, image: RGBImage, probe: Probe) -> tuple[Probe, Box | None]:
    image = np.ascontiguousarray(image)
    boxes = model.detect(image)
    probe.faces = len(boxes)
    if len(boxes) != 1:
        return probe, None
    face = model.describe(image, boxes[0])
    probe.figures = quality.measure(image, face.box, face.landmarks)
    probe.template = _unit(face.template)
    return probe, face.box


def frame(image: RGBImage, box: Box, scale: float = 1.0) -> RGBImage:
    """The kiosk's 640x480 frame of a traveller whose face is ``box``: the face box a third
    of the width, times ``scale`` (a traveller further away shows more of the room,
    resampled into the same frame). Beyond the photo's edge lies a plain grey wall."""
    width, height = FRAME
    window = box.width / FACE_SHARE / scale
    window_h = window * height / width
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    left, top = round(cx - window / 2), round(cy - window_h * 0.45)
    right, bottom = left + round(window), top + round(window_h)
    ih, iw = image.shape[:2]
    pad = max(0, -left, -top, right - iw, bottom - ih)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128,) * 3)
    crop = padded[top + pad : bottom + pad, left + pad : right + pad]
    return np.asarray(cv2.resize(crop, FRAME, interpolation=cv2.INTER_AREA), np.uint8)


def degrade(framed: RGBImage, kind: str, level: float, *, seed: int) -> RGBImage:
    """``framed`` spoiled one way (scale is done by :func:`frame`)."""
    if kind == "blur":
        return np.asarray(cv2.GaussianBlur(framed, (0, 0), level), np.uint8)
    if kind == "gain":
        return np.clip(framed.astype(np.float64) * level, 0, 255).astype(np.uint8)
    if kind == "roll":
        # The face sits a little above the middle (see frame()).
        centre = (FRAME[0] / 2, FRAME[1] * 0.45)
        turn = cv2.getRotationMatrix2D(centre, level, 1.0)
        return np.asarray(
            cv2.warpAffine(framed, turn, FRAME, borderMode=cv2.BORDER_REPLICATE), np.uint8
        )
    if kind == "jpeg":
        bgr = cv2.cvtColor(framed, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(level)])
        assert ok
        return np.asarray(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    if kind == "noise":
        noise = np.random.default_rng(seed).normal(0.0, level, framed.shape)
        return np.clip(framed.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    if kind == "none":
        return framed
    raise ValueError(f"unknown degradation {kind!r}")


def collect(
    photos: Sequence[Photo],
    model: FaceModel,
    levels: dict[str, tuple[float, ...]],
    settings: Settings,
    *,
    quiet: bool = False,
) -> tuple[list[Probe], dict[str, Probe], list[str]]:
    """Every degraded probe of every capture, and each capture's enrolled photo. A photo
    without exactly one face, or that the enrollment profile refuses, enrolls nobody: it
    is left out (and named)."""
    limits = capture.limits(settings)
    total = len(photos) * (2 + sum(len(v) for v in levels.values()))
    progress = common.Progress("faces", total, stream=common.stream(quiet))
    probes: list[Probe] = []
    references: dict[str, Probe] = {}
    skipped: list[str] = []
    for number, photo in enumerate(photos):
        image = intake.decode(photo.path.read_bytes(), limits)
        reference, box = _look(model, image, Probe(photo.person, photo.capture, "enrolled", 0))
        progress.advance(1 + sum(len(v) for v in levels.values()) + 1 if box is None else 1)
        if box is None or reference.figures is None:
            skipped.append(f"{photo.path.name}: {reference.faces} faces")
            continue
        refused = [
            m.name
            for m in quality.judge(reference.figures, settings.quality.enrollment)
            if not m.passed
        ]
        if refused:
            skipped.append(f"{photo.path.name}: enrollment refuses it ({', '.join(refused)})")
            progress.advance(1 + sum(len(v) for v in levels.values()))
            continue
        references[photo.capture] = reference
        framed = frame(image, box)
        for kind, values in [("none", (0.0,)), *levels.items()]:
            for i, level in enumerate(values):
                shown = (
                    frame(image, box, level)
                    if kind == "scale"
                    else degrade(framed, kind, level, seed=number * 1000 + i)
                )
                probes.append(
                    _look(model, shown, Probe(photo.person, photo.capture, kind, level))[0]
                )
                progress.advance()
    progress.finish()
    return probes, references, skipped


def distance(a: Vector, b: Vector) -> float:
    return float(np.linalg.norm(a - b))


def outcome(probe: Probe, reference: Probe, limits: QualityThresholds, threshold: float) -> str:
    """``not_detected``, ``quality_low``, ``mismatched`` or ``matched``: what a kiosk with
    these limits decides on the face of ``probe`` claiming ``reference``'s person."""
    if probe.faces == 0:
        return "not_detected"
    if probe.faces > 1 or probe.figures is None or probe.template is None:
        return "quality_low"
    if not all(m.passed for m in quality.judge(probe.figures, limits)):
        return "quality_low"
    assert reference.template is not None
    return "matched" if distance(probe.template, reference.template) <= threshold else "mismatched"


def pairs(study: Study, *, genuine: bool) -> list[tuple[Probe, Probe]]:
    """Every (probe, enrolled photo) of two different captures, of one person or not."""
    return [
        (probe, ref)
        for probe in study.probes
        for ref in study.references.values()
        if ref.capture != probe.capture and (ref.person == probe.person) == genuine
    ]


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100 * part / whole, 1)


def degradation_rows(study: Study) -> list[common.Row]:
    """Per degradation (and overall): referral shares per profile, the causes, distances."""
    genuine, impostor = pairs(study, genuine=True), pairs(study, genuine=False)
    kinds = ["none", *LEVELS, "all degraded"]
    rows: list[common.Row] = []
    for kind in kinds:
        if kind != "all degraded" and not any(p.kind == kind for p in study.probes):
            continue

        def chosen(p: Probe, kind: str = kind) -> bool:
            return p.kind != "none" if kind == "all degraded" else p.kind == kind

        gen = [(p, r) for p, r in genuine if chosen(p)]
        imp = [(p, r) for p, r in impostor if chosen(p)]
        verdicts = {
            name: [outcome(p, r, limits, study.threshold) for p, r in gen]
            for name, limits in study.profiles.items()
        }
        matched_by_distance = [
            p.template is not None
            and r.template is not None
            and distance(p.template, r.template) <= study.threshold
            for p, r in gen
        ]
        gen_d = [
            distance(p.template, r.template)
            for p, r in gen
            if p.template is not None and r.template is not None
        ]  # type: ignore[arg-type]
        imp_d = [
            distance(p.template, r.template)
            for p, r in imp
            if p.template is not None and r.template is not None
        ]  # type: ignore[arg-type]
        kiosk_imp_d = [
            distance(p.template, r.template)  # type: ignore[arg-type]
            for p, r in imp
            if outcome(p, r, study.profiles["kiosk"], study.threshold) in {"matched", "mismatched"}
        ]
        kiosk_accepted = sum(
            outcome(p, r, study.profiles["kiosk"], study.threshold) == "matched" for p, r in imp
        )
        today = verdicts["today"]
        rows.append(
            {
                "degradation": kind,
                "probes": sum(chosen(p) for p in study.probes),
                "genuine_pairs": len(gen),
                "today_referred_pct": _pct(sum(v != "matched" for v in today), len(gen)),
                "kiosk_referred_pct": _pct(
                    sum(v != "matched" for v in verdicts["kiosk"]), len(gen)
                ),
                "enrollment_referred_pct": _pct(
                    sum(v != "matched" for v in verdicts["enrollment"]), len(gen)
                ),
                "today_quality_low": today.count("quality_low"),
                "kiosk_quality_low": verdicts["kiosk"].count("quality_low"),
                "not_detected": today.count("not_detected"),
                "mismatched": sum(p.template is not None for p, _ in gen)
                - sum(matched_by_distance),
                "today_refused_but_matched": sum(
                    v == "quality_low" and m
                    for v, m in zip(today, matched_by_distance, strict=True)
                ),
                "genuine_median": round(float(np.median(gen_d)), 3) if gen_d else None,
                "genuine_max": round(max(gen_d), 3) if gen_d else None,
                "impostor_min": round(min(imp_d), 3) if imp_d else None,
                "kiosk_impostor_min": round(min(kiosk_imp_d), 3) if kiosk_imp_d else None,
                "kiosk_impostors_accepted": kiosk_accepted,
            }
        )
    return rows


def erc(
    badness: Sequence[float], failed: Sequence[bool], fractions: Iterable[float]
) -> list[float]:
    """FNMR of what is kept after rejecting the worst ``fraction`` by ``badness`` (ties
    broken by order), for each fraction: the error-versus-reject characteristic."""
    order = np.argsort(-np.asarray(badness, dtype=np.float64), kind="stable")
    fails = np.asarray(failed, dtype=bool)[order]
    n = len(fails)
    out = []
    for fraction in fractions:
        kept = fails[round(fraction * n) :]
        out.append(float(kept.mean()) if kept.size else 0.0)
    return out


@dataclass
class Erc:
    fractions: list[float]
    curves: dict[str, list[float]]  # measure (or "oracle") -> FNMR per fraction
    enrollment_curves: dict[str, list[float]]
    rows: list[common.Row]


def future_fnmr(study: Study) -> list[tuple[Probe, float, float]]:
    """Each degraded image taken as a person's enrolled reference, with the share of later
    kiosk probes of the person (other captures, accepted by the kiosk profile) it fails to
    match and their mean distance. Images whose person has no other capture are left out."""
    kiosk = study.profiles["kiosk"]
    later = [
        p
        for p in study.probes
        if p.faces == 1
        and p.figures is not None
        and all(m.passed for m in quality.judge(p.figures, kiosk))
    ]
    scored = []
    for ref in study.probes:
        if ref.template is None or ref.figures is None:
            continue
        mates = [p for p in later if p.person == ref.person and p.capture != ref.capture]
        if mates:
            found = [distance(p.template, ref.template) for p in mates]  # type: ignore[arg-type]
            misses = sum(d > study.threshold for d in found)
            scored.append((ref, misses / len(mates), float(np.mean(found))))
    return scored


def quality_erc(study: Study) -> Erc:
    fractions = [round(i / 100, 2) for i in range(0, 51)]
    genuine = [
        (p, r) for p, r in pairs(study, genuine=True) if p.template is not None and p.kind != "none"
    ]
    dists = [distance(p.template, r.template) for p, r in genuine]  # type: ignore[arg-type]
    failed = [d > study.threshold for d in dists]
    curves = {
        name: erc([score(p.figures) for p, _ in genuine], failed, fractions)  # type: ignore[arg-type]
        for name, score in BADNESS.items()
    }
    curves["oracle"] = erc(dists, failed, fractions)
    scored = future_fnmr(study)
    enrollment_curves: dict[str, list[float]] = {}
    for name, score in BADNESS.items():
        order = np.argsort([-score(r.figures) for r, _, _ in scored], kind="stable")  # type: ignore[arg-type]
        values = np.asarray([f for _, f, _ in scored])[order]
        enrollment_curves[name] = [
            float(values[round(x * len(values)) :].mean()) if len(values) else 0.0
            for x in fractions
        ]
    rows: list[common.Row] = []
    enrollment = study.profiles["enrollment"]
    for index, name in enumerate(BADNESS):

        def flagged(p: Probe, limits: QualityThresholds, index: int = index) -> bool:
            assert p.figures is not None
            return not quality.judge(p.figures, limits)[index].passed

        today_flags = [flagged(p, TODAY) for p, _ in genuine]
        ref_flags = [flagged(r, enrollment) for r, _, _ in scored]
        flagged_f = [f for (_, f, _), x in zip(scored, ref_flags, strict=True) if x]
        passed_f = [f for (_, f, _), x in zip(scored, ref_flags, strict=True) if not x]
        flagged_d = [d for (_, _, d), x in zip(scored, ref_flags, strict=True) if x]
        passed_d = [d for (_, _, d), x in zip(scored, ref_flags, strict=True) if not x]
        today_d = [d for d, x in zip(dists, today_flags, strict=True) if x]
        today_ok_d = [d for d, x in zip(dists, today_flags, strict=True) if not x]
        rows.append(
            {
                "measure": name,
                "today_flags": sum(today_flags),
                "today_flagged_mismatched": sum(
                    x and f for x, f in zip(today_flags, failed, strict=True)
                ),
                "kiosk_flags": sum(flagged(p, study.profiles["kiosk"]) for p, _ in genuine),
                "fnmr_at_0": round(curves[name][0], 3),
                "fnmr_reject_10pct": round(curves[name][10], 3),
                "fnmr_reject_20pct": round(curves[name][20], 3),
                "oracle_reject_10pct": round(curves["oracle"][10], 3),
                "today_flagged_distance": _mean(today_d),
                "today_passed_distance": _mean(today_ok_d),
                "enrollment_flags": sum(ref_flags),
                "future_fnmr_flagged": round(float(np.mean(flagged_f)), 3) if flagged_f else None,
                "future_fnmr_passed": round(float(np.mean(passed_f)), 3) if passed_f else None,
                "future_distance_flagged": _mean(flagged_d),
                "future_distance_passed": _mean(passed_d),
            }
        )
    return Erc(fractions, curves, enrollment_curves, rows)


def plot(study: Study, rows: Sequence[common.Row], curves: Erc, out: Path, tag: str) -> list[Path]:
    """The PNGs: referral share per degradation and profile, distances per level, ERCs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []

    kinds = [str(r["degradation"]) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.27
    for offset, (label, key) in enumerate(
        [
            ("today's thresholds", "today_referred_pct"),
            ("kiosk profile", "kiosk_referred_pct"),
            ("enrollment profile", "enrollment_referred_pct"),
        ]
    ):
        values = [float(r[key] or 0) for r in rows]  # type: ignore[arg-type]
        ax.bar([i + (offset - 1) * width for i in range(len(kinds))], values, width, label=label)
    ax.axhline(8, color="black", linestyle="--", linewidth=1, label="kiosk target 8%")
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set_ylabel("genuine pairs referred for the face (%)")
    ax.set_title("Degraded genuine probes referred, by profile")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / f"quality-referred{tag}.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    kinds_present = [k for k in LEVELS if any(p.kind == k for p in study.probes)]
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharey=True)
    for ax, kind in zip(axes.ravel(), kinds_present, strict=False):
        for genuine, colour, label in (
            (True, "tab:blue", "genuine"),
            (False, "tab:red", "impostor"),
        ):
            points: dict[float, list[float]] = {}
            for p, r in pairs(study, genuine=genuine):
                if p.kind == kind and p.template is not None:
                    points.setdefault(p.level, []).append(distance(p.template, r.template))  # type: ignore[arg-type]
            if not genuine:
                points = {level: [min(v)] for level, v in points.items()}
            xs = [x for x, v in points.items() for _ in v]
            ys = [y for v in points.values() for y in v]
            ax.scatter(
                xs,
                ys,
                s=14,
                color=colour,
                alpha=0.6,
                label=label if genuine else "nearest impostor",
            )
        ax.axhline(study.threshold, color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{kind} ({UNITS[kind]})")
    axes.ravel()[0].legend(fontsize=8)
    axes.ravel()[0].set_ylabel("distance (unit templates)")
    fig.suptitle(f"Distances of degraded probes; dashed: verify threshold {study.threshold}")
    fig.tight_layout()
    written.append(out / f"quality-distances{tag}.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    for name, data, ylabel, title in (
        (
            "quality-erc",
            curves.curves,
            "FNMR of the kept genuine pairs",
            "Kiosk probes: ERC per measure",
        ),
        (
            "quality-erc-enrollment",
            curves.enrollment_curves,
            "mean share of later kiosk probes not matched",
            "Enrolled references: ERC per measure",
        ),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for measure, ys in data.items():
            style = {"color": "black", "linestyle": "--"} if measure == "oracle" else {}
            ax.plot([100 * x for x in curves.fractions], ys, label=measure, **style)  # type: ignore[arg-type]
        ax.set_xlabel("share rejected, worst first by the measure (%)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out / f"{name}{tag}.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    return written


@dataclass(frozen=True)
class Options:
    faces: Path = SAMPLES
    tiny: bool = False
    out: Path = RESULTS
    quiet: bool = False


def run(
    options: Options, *, model: FaceModel | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """The study; returns its rows, the ERC rows, the plots written and what was left out."""
    settings = settings or Settings()
    model = model or FaceModel(
        detector=settings.face_detector, detect_size=settings.face_detect_size
    )
    levels = TINY if options.tiny else LEVELS
    photos = read_labels(options.faces)
    probes, references, skipped = collect(photos, model, levels, settings, quiet=options.quiet)
    study = Study(
        probes=probes,
        references=references,
        profiles={
            "today": TODAY,
            "kiosk": settings.quality.kiosk,
            "enrollment": settings.quality.enrollment,
        },
        threshold=settings.verify_threshold,
        skipped=skipped,
    )
    rows = degradation_rows(study)
    curves = quality_erc(study)
    plots = plot(study, rows, curves, options.out, "-tiny" if options.tiny else "")
    return {
        "photos": [f"{p.path.name} ({p.person}, capture {p.capture})" for p in photos],
        "skipped": skipped,
        "genuine_pairs": len(pairs(study, genuine=True)),
        "impostor_pairs": len(pairs(study, genuine=False)),
        "verify_threshold": study.threshold,
        "profiles": {name: limits.model_dump() for name, limits in study.profiles.items()},
        "rows": rows,
        "erc": curves.rows,
        "plots": [str(p) for p in plots],
    }


def render(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"photos: {', '.join(report['photos'])}",
            *(f"left out: {s}" for s in report["skipped"]),
            f"{report['genuine_pairs']} genuine and {report['impostor_pairs']} impostor"
            f" (probe, enrolled photo) pairs; verify threshold {report['verify_threshold']}",
            "",
            common.table(report["rows"], COLUMNS),
            "",
            common.table(report["erc"], ERC_COLUMNS),
            "",
            *(f"plot: {p}" for p in report["plots"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--faces", type=Path, default=SAMPLES, help="a folder of labelled photos")
    parser.add_argument("--tiny", action="store_true", help="one level a degradation (tests)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the PNGs go")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    try:
        report = run(Options(faces=args.faces, tiny=args.tiny, out=args.out, quiet=args.quiet))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    if args.json is not None:
        report["machine"] = common.machine()
        common.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

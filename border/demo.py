"""``border demo``: a day at a border post, played through the HTTP API in-process on the
embedded defaults, in a data directory of its own.

The cast is the three people in the sample photographs (samples/faces), under made-up
names and documents: a visa-exempt visitor first seen at a kiosk, who leaves on a renewed
passport that an officer links to his record, a visa holder whose passport an impostor
tries to use and who later shows a passport on the stolen list, and a minor without a
visa. Joe's passport carries a chip (a specimen CSCA of Kenya, imported into the trust
store, and a chip signed under it: DESIGN §16), so the kiosk also checks the chip and
compares its photo with the live face. The run prints every crossing with its decision and
reasons, the overstayers, and the audit-chain check.
"""

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2

with warnings.catch_warnings():
    # Starlette nudges toward httpx2; the demo only needs the in-process client.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from border import models, service
from border.app import create_app
from border.schema import migration_dirs
from core import auth
from core.runtime import Runtime
from core.settings import Settings
from visa import pki, specimen
from visa.mrz import format_td3

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "lin-manuel-miranda.png")
POINT = "UTO-AIR-1"
WIDTHS = (16, 26, 5, 8, 0)


def default_faces() -> Path:
    """The project's sample photos (samples/faces, with their source and licence)."""
    return Path(__file__).resolve().parents[1] / "samples" / "faces"


class MissingPhotos(Exception):
    pass


@dataclass(frozen=True)
class Traveller:
    name: str
    photo: str
    nationality: str
    number: str
    birth_date: date

    def mrz(self) -> str:
        surname, _, given = self.name.upper().partition(" ")
        return format_td3(
            surname=given or surname,
            given_names=surname if given else "",
            document_number=self.number,
            issuing_state=self.nationality,
            nationality=self.nationality,
            birth_date=self.birth_date,
            sex="M",
            expiry_date=date.today().replace(year=date.today().year + 5),
        )


class Demo:
    def __init__(self, client: TestClient, faces: Path, keys: dict[str, str]) -> None:
        self.client = client
        self.faces = faces
        self.headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
        self.rows: list[tuple[str, str, str, str, str]] = []

    def call(self, method: str, path: str, role: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers[role], **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def image(self, photo: str) -> dict[str, tuple[str, bytes, str]]:
        return {"image": (photo, (self.faces / photo).read_bytes(), "application/octet-stream")}

    def enroll(self, who: Traveller) -> str:
        body = self.call(
            "POST", "/v1/persons", "consular", files=self.image(who.photo), data={"mrz": who.mrz()}
        )
        return str(body["person_id"])

    def cross(
        self,
        label: str,
        who: Traveller,
        photo: str,
        direction: str,
        at: datetime,
        role: str = "kiosk",
        chip: dict[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """A crossing posted by the kiosk, or by the officer (``role``) for one older than
        the kiosk's back-dating window; with ``chip``, the passport chip's files the kiosk
        read (DESIGN §16)."""
        files: dict[str, tuple[str, bytes, str]] = self.image(photo)
        for name, data in (chip or {}).items():
            files[name] = (name, data, "application/octet-stream")
        result: dict[str, Any] = self.call(
            "POST",
            "/v1/crossings",
            role,
            files=files,
            data={
                "mrz": who.mrz(),
                "direction": direction,
                "border_point": POINT,
                "at": at.isoformat(),
            },
        )
        reasons = "; ".join(r["code"] for r in result["reasons"]) or "-"
        self.rows.append(
            (at.strftime("%Y-%m-%d %H:%M"), label, direction, result["decision"], reasons)
        )
        return result

    def resolve(self, crossing: dict[str, Any], outcome: str, note: str, **more: Any) -> None:
        """An officer's resolution; a refusal names its Annex V grounds (``grounds``).
        The kiosk's answer holds no time or direction: the officer reads them."""
        seen = self.officer_view(crossing)
        self.call(
            "POST",
            f"/v1/crossings/{crossing['crossing_id']}/resolution",
            "officer",
            json={"outcome": outcome, "note": note, **more},
        )
        when = seen["at"][11:16]
        grounds = f" on grounds {','.join(more['grounds'])}" if "grounds" in more else ""
        link = " and links the new passport" if "link_person_id" in more else ""
        print(
            f"  officer resolves the {seen['direction']} of {when}: "
            f"{outcome}{grounds}{link} ({note})"
        )

    def officer_view(self, crossing: dict[str, Any]) -> dict[str, Any]:
        """A referral as the officer's queue shows it: the person, the match, the
        candidates and alert reasons, which the kiosk's answer never holds (DESIGN §12)."""
        queue = self.call("GET", "/v1/crossings", "officer")
        found: dict[str, Any] = next(
            c for c in queue if c["crossing_id"] == crossing["crossing_id"]
        )
        return found


def _passport_chip(demo: Demo, who: Traveller) -> dict[str, bytes]:
    """The traveller's e-passport chip, made for the demo: a specimen CSCA of the issuing
    state, imported into the trust store as `border pki import` does, a document signer,
    and DG1 (the MRZ), DG2 (the photo, as JPEG 2000) and EF.SOD signing both."""
    rt: Runtime = demo.client.app_state["rt"]
    authority = specimen.csca("KE", name="CSCA Kenya (demo specimen)")
    pki.import_file(rt, auth.command_line("demo"), authority.pem)
    image = cv2.imread(str(demo.faces / who.photo), cv2.IMREAD_COLOR)
    if image is None:
        raise MissingPhotos(f"{demo.faces / who.photo} is not a readable photo")
    height, width = image.shape[:2]
    image = cv2.resize(image, (360, height * 360 // width), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jp2", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode JPEG 2000")
    one, two = specimen.dg1(who.mrz()), specimen.dg2(encoded.tobytes(), "jpeg2000")
    return {
        "dg1": one,
        "dg2": two,
        "sod": specimen.sod(specimen.signer(authority), {1: one, 2: two}),
    }


@contextmanager
def _data_dir(chosen: Path | None, keep: bool) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
        return
    folder = Path(tempfile.mkdtemp(prefix="border-demo-"))
    try:
        yield folder
    finally:
        if keep:
            print(f"\nthe demo's data directory is kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _keys(settings: Settings, client: TestClient) -> dict[str, str]:
    """An admin key made as `border clients create` makes one, then a key per role."""
    rt: Runtime = client.app_state["rt"]
    admin = service.create_client(
        rt, auth.command_line("demo"), models.ClientIn(name="demo admin", role="admin")
    ).api_key
    keys = {"admin": admin}
    for role in ("consular", "officer", "kiosk", "auditor"):
        body = {"name": f"demo {role}", "role": role}
        if role == "kiosk":
            body["border_point"] = POINT
        response = client.post(
            "/v1/clients", json=body, headers={"Authorization": f"Bearer {admin}"}
        )
        keys[role] = response.json()["api_key"]
    return keys


def run(
    *,
    data_dir: Path | None = None,
    faces: Path | None = None,
    keep: bool = False,
    console_port: int | None = None,
) -> int:
    """Play the day; with ``console_port``, keep the store, leave one referral open and
    serve the console on that port of 127.0.0.1 with a sign-in for each role."""
    faces = faces or default_faces()
    missing = [p for p in PHOTOS if not (faces / p).is_file()]
    if missing:
        raise MissingPhotos(
            f"the demo needs the sample photos {', '.join(missing)} in {faces}; "
            "pass --faces DIR to point at the folder that holds them"
        )
    with _data_dir(data_dir, keep or console_port is not None) as folder:
        # Never the configured store or key: the demo plays on its own embedded defaults.
        settings = Settings(
            data_dir=folder, database_url=None, master_key=None, log_level="WARNING"
        )
        print(f"Border demo: embedded PostgreSQL and keys in {folder}")
        with TestClient(create_app(settings)) as client:
            demo = Demo(client, faces, _keys(settings, client))
            code = _play(demo)
            if console_port is None or code != 0:
                return code
            _leave_a_referral(demo)
        _serve_console(settings, console_port)
        return code


def _leave_a_referral(demo: Demo) -> None:
    """One referral left open for the officer's queue in the console."""
    joe = Traveller("Joe Sample", "biden.jpg", "KEN", "KE7654321", date(1962, 11, 20))
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    demo.cross("someone else on Joe's passport, left for the console", joe, "obama3.jpg",
               "entry", at)  # fmt: skip


def _serve_console(settings: Settings, port: int) -> None:
    """A sign-in for each staff role (admin-provisioned, as `border users create
    --password-stdin` makes them), then the service with its console until Ctrl-C."""
    import secrets

    import uvicorn

    from border import users

    rt = Runtime.start(settings, migration_dirs())
    try:
        print("\nconsole sign-ins (admin-provisioned demo accounts; add the TOTP key to an")
        print("authenticator app, or: python -c \"import pyotp; print(pyotp.TOTP('KEY').now())\")")
        for role in users.STAFF_ROLES:
            password = secrets.token_urlsafe(12)
            created = users.create(
                rt, auth.command_line("demo"), username=f"demo.{role}", role=role,
                border_point=POINT if role == "officer" else None, password=password,
            )  # fmt: skip
            secret = (created.totp_uri or "").split("secret=")[1].split("&")[0]
            print(f"  {role:<9} username demo.{role:<10} password {password}  TOTP key {secret}")
    finally:
        rt.close()
    print(f"\nthe console: http://127.0.0.1:{port}/console/  (Ctrl-C ends it; the data stay in")
    print(f"{settings.data_dir})")
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def _play(demo: Demo) -> int:
    # Scenes are dated in the last few hours (a crossing may not lie in the future), and
    # one a hundred days back: the visitor who will overstay.
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=6)
    barack = Traveller("Barack Example", "obama.jpg", "USA", "US1234567", date(1961, 8, 4))
    joe = Traveller("Joe Sample", "biden.jpg", "KEN", "KE7654321", date(1962, 11, 20))
    lin = Traveller("Lin Minor", "lin-manuel-miranda.png", "IND", "IN2468013",
                    date(start.year - 16, 1, 1))  # fmt: skip

    print("\nconsular post: enrolls Joe (Kenyan passport) and issues him a 30-day visa;")
    print("              enrolls Lin (16, Indian passport), who has no visa")
    joe_id = demo.enroll(joe)
    visa = {
        "person_id": joe_id,
        "visa_type": "C",
        "issuing_state": "UTO",
        "valid_from": (start.date() - timedelta(days=30)).isoformat(),
        "valid_until": (start.date() + timedelta(days=150)).isoformat(),
        "entries": "MULT",
        "duration_of_stay_days": 30,
    }
    demo.call("POST", "/v1/visas", "consular", json=visa)
    demo.enroll(lin)
    chip = _passport_chip(demo, joe)
    print("admin: imports Kenya's CSCA certificate into the chip's trust store")

    print(f"\nkiosk at {POINT}, and the officer behind it")
    # A kiosk may not date a crossing more than 72 hours back: the officer records this one
    # from the paper log, and it is marked late.
    demo.cross(
        "Barack, first visit", barack, "obama.jpg", "entry", start - timedelta(days=100),
        role="officer",
    )  # fmt: skip
    print("  officer records Barack's entry of 100 days ago from the paper log")
    impostor = demo.cross("impostor on Joe's passport", joe, lin.photo, "entry", start, chip=chip)
    checked = demo.officer_view(impostor)["chip"]
    print(
        f"  the chip of Joe's passport: passive authentication {checked['passive_authentication']}"
        f"; its photo lies {checked['face_distance']:.2f} from the live face"
    )
    demo.cross("Joe", joe, "biden.jpg", "entry", start + timedelta(minutes=5), chip=chip)
    alone = demo.cross(
        "Lin, alone, no visa", lin, lin.photo, "entry", start + timedelta(minutes=20)
    )
    demo.resolve(
        impostor, "refuse", "face does not match the passport; passport retained", grounds=["B"]
    )
    demo.resolve(
        alone, "refuse", "minor without visa or guardian; returned with the airline",
        grounds=["C"],
    )  # fmt: skip
    stolen = {"kind": "document", "issuing_state": "KEN", "document_number": "KE0000999",
              "category": "lost_stolen_document", "note": "reported stolen in Nairobi"}  # fmt: skip
    demo.call("POST", "/v1/alerts", "officer", json=stolen)
    print("  officer records passport KEN KE0000999 as stolen (a document alert)")
    thief = Traveller("Joe Sample", "biden.jpg", "KEN", "KE0000999", date(1962, 11, 20))
    on_stolen = demo.cross("Joe on a stolen passport", thief, "biden.jpg", "entry",
                           start + timedelta(minutes=40))  # fmt: skip
    seen = [r["code"] for r in demo.officer_view(on_stolen)["reasons"]]
    print(f"  the kiosk shows SEE_OFFICER; the officer sees {', '.join(seen)}")
    demo.resolve(on_stolen, "refuse", "passport on the stolen list; seized", grounds=["A", "B"])
    watch = {"person_id": joe_id, "reason": "liaison officer alert"}
    demo.call("POST", "/v1/watchlist", "officer", json=watch)
    print("  officer puts Joe on the watchlist")
    demo.cross("Joe, leaving", joe, "biden.jpg", "exit", start + timedelta(hours=4))
    # Barack renewed his passport at his embassy: the kiosk does not know the new number,
    # but his face matches his enrolled record.
    renewed = Traveller("Barack Example", "obama2.jpg", "USA", "US7654321", date(1961, 8, 4))
    leaving = demo.cross(
        "Barack, new passport", renewed, "obama2.jpg", "exit", start + timedelta(hours=5)
    )
    candidate = demo.officer_view(leaving)["candidates"][0]["person_id"]
    demo.resolve(
        leaving, "admit", "same person as the enrolled record; passport renewed at the embassy",
        link_person_id=candidate,
    )  # fmt: skip
    history = demo.call("GET", "/v1/crossings", "officer", params={"person_id": candidate})
    admitted = [c for c in history if c["decision"] == "admit" or c["resolution"]]
    print(
        f"  Barack's record now holds {len(admitted)} crossings across both passports; "
        f"the exit counts {history[-1]['stay']['days_used']} days used"
    )

    header = ("at (UTC)", "traveller", "way", "decision", "reasons")
    print("\n" + "  ".join(f"{h:<{w}}" for h, w in zip(header, WIDTHS, strict=True)))
    for row in demo.rows:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, WIDTHS, strict=True)))

    late = demo.call("GET", "/v1/crossings", "officer", params={"late": "true"})
    print(
        f"\nthe officer's late list: {len(late)} crossings recorded more than 10 minutes "
        "after their time (the demo replays its day afterwards)"
    )

    day_before = (start - timedelta(days=1)).date().isoformat()
    over = demo.call("GET", "/v1/overstayers", "officer", params={"on": day_before})
    found = [f"{o['overstay_days']} day(s) past {o['authorised_until']}" for o in over]
    print(f"\noverstayers on {day_before}: {', '.join(found) or 'none'}")
    verdict = demo.call("GET", "/v1/audit/verify", "auditor")
    state = "holds" if verdict["ok"] else f"is BROKEN at seq {verdict['first_bad_seq']}"
    print(f"audit chain {state}: {verdict['events']} events, head {verdict['head_hash'][:16]}")
    return 0 if verdict["ok"] else 1

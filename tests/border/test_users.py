"""Staff accounts and console sessions (DESIGN §11, §14), on the real store as border_app:
activation, sign-in with TOTP, lockout per account and address, session expiry, the row
MAC, CSRF tokens, purposes, names for auditors, and what reaches the audit chain."""

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import argon2
import psycopg
import pyotp
import pytest

from border import service, users
from core import auth, crypto
from core import users_store as store
from core.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unauthorized
from core.runtime import Runtime
from tests.conftest import in_parallel

PASSWORD = "correct horse battery"
HERE = "192.0.2.10"
ELSEWHERE = "198.51.100.7"
ADMIN = auth.command_line("test")


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def code(secret: str, ahead: int = 0) -> str:
    """The code of the current 30 s step, or of one ``ahead`` of it. Tests use steps 0 and
    +1 only, so a step boundary crossed during the test still leaves both accepted."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(UTC).timestamp()) + ahead)


def wrong_code(secret: str) -> str:
    """Six digits that no step near now accepts."""
    near = {code(secret, ahead) for ahead in (-2, -1, 0, 1, 2)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)


def provisioned(
    rt: Runtime,
    username: str = "officer.one",
    role: str = "officer",
    border_point: str | None = None,
) -> str:
    """An active admin-provisioned account; its TOTP secret."""
    created = users.create(
        rt, ADMIN, username=username, role=role, border_point=border_point, password=PASSWORD
    )
    assert created.totp_uri is not None
    return secret_of(created.totp_uri)


def token_of(url: str | None) -> str:
    assert url is not None
    return url.rsplit("/", 1)[1]


def insider(database_url: str, query: str, params: dict[str, object] | None = None) -> None:
    """What someone with write access to the database does, behind the service's back."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(query.encode(), params or {})


def forget_steps(database_url: str, username: str) -> None:
    """Let codes of steps already used count again, so one test can sign in more than twice
    within 30 s (the last step is outside the MAC)."""
    insider(
        database_url,
        "UPDATE users SET totp_last_step = NULL WHERE username = %(u)s",
        {"u": username},
    )


def events(database_url: str, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, role, outcome, resource_type, resource_id, detail FROM audit_events"
            " WHERE action = %s ORDER BY seq",
            (action,),
        ).fetchall()
    keys = ("actor", "role", "outcome", "resource_type", "resource_id", "detail")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def all_events_text(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor, resource_id, purpose, detail FROM audit_events")
        return json.dumps([list(r) for r in rows], default=str)


def sign_in(rt: Runtime, secret: str, *, username: str = "officer.one", ahead: int = 1,
            address: str = HERE, password: str = PASSWORD) -> users.Session:  # fmt: skip
    return users.sign_in(
        rt, username=username, password=password, code=code(secret, ahead), address=address
    )


def row(rt: Runtime, username: str) -> store.UserRow:
    with rt.pool.connection() as conn:
        found = store.user_by_name(conn, username)
    assert found is not None
    return found


def rewrite(rt: Runtime, updated: store.UserRow) -> None:
    """Change a row as the service would, MAC included (to set up a past or a legacy)."""
    with rt.pool.connection() as conn:
        store.update_user(conn, users.sealed(rt.keys, updated))


class TestCreate:
    def test_a_pending_account_gets_a_one_time_link_and_a_chain_event(
        self, rt: Runtime, database_url: str
    ) -> None:
        created = users.create(
            rt, ADMIN, username="Consul.Anna", role="consular", border_point="UTO-AIR-1"
        )
        assert created.user.username == "consul.anna"
        assert (created.user.status, created.user.admin_provisioned) == ("pending", False)
        assert created.totp_uri is None
        assert created.activation_url is not None
        assert created.activation_url.startswith("http://127.0.0.1:8000/console/activate/")
        assert len(token_of(created.activation_url)) >= 43
        [event] = events(database_url, "users.create")
        assert event["actor"] == ADMIN.actor
        assert event["resource_id"] == str(created.user.id)
        assert event["detail"] == {
            "role": "consular",
            "border_point": "UTO-AIR-1",
            "admin_provisioned": False,
        }

    def test_only_the_link_s_digest_is_stored(self, rt: Runtime, database_url: str) -> None:
        created = users.create(rt, ADMIN, username="anna", role="consular")
        token = token_of(created.activation_url)
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT activation_sha256, activation_expires_at FROM users")
            digest, expires = stored.fetchone() or (None, None)
        assert digest == hashlib.sha256(token.encode()).digest()
        assert expires is not None
        assert timedelta(hours=71) < expires - datetime.now(UTC) <= timedelta(hours=72)

    def test_a_password_makes_it_active_and_admin_provisioned_with_a_totp_uri(
        self, rt: Runtime, database_url: str
    ) -> None:
        created = users.create(rt, ADMIN, username="alice", role="admin", password=PASSWORD)
        assert (created.user.status, created.user.admin_provisioned) == ("active", True)
        assert created.activation_url is None
        assert created.totp_uri is not None
        assert created.totp_uri.startswith("otpauth://totp/Border:alice?secret=")
        assert created.totp_uri.endswith("&issuer=Border")
        assert events(database_url, "users.create")[0]["detail"]["admin_provisioned"] is True
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT password_hash FROM users").fetchone()
        assert stored is not None
        assert stored[0].startswith("$argon2id$")

    def test_the_totp_secret_is_sealed_under_the_user_s_own_key(
        self, rt: Runtime, database_url: str
    ) -> None:
        secret = provisioned(rt)
        user = row(rt, "officer.one")
        assert user.totp_sealed is not None
        assert secret.encode() not in bytes(user.totp_sealed)
        with rt.pool.connection() as conn:
            key = rt.keys.data_key(conn, user.id)
        assert key is not None
        opened = crypto.unseal(key, bytes(user.totp_sealed), crypto.aad("users", "totp", user.id))
        assert opened.decode() == secret

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"username": "a"}, "username"),
            ({"username": "has space"}, "username"),
            ({"username": "x" * 65}, "username"),
            ({"role": "kiosk"}, "role"),
            ({"role": "traveller"}, "role"),
            ({"border_point": "no spaces allowed"}, "border_point"),
            ({"password": "short"}, "password"),
            ({"password": "x" * 129}, "password"),
            ({"password": ""}, "password"),
            ({"username": "long.username.1", "password": "Long.Username.1"}, "password"),
        ],
    )
    def test_bad_fields_are_named_and_nothing_is_written(
        self, rt: Runtime, database_url: str, changes: dict[str, str], field: str
    ) -> None:
        given: dict[str, Any] = {"username": "bob", "role": "officer", **changes}
        with pytest.raises(InvalidRequest) as refused:
            users.create(rt, ADMIN, **given)
        assert refused.value.extra["field"] == field
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == (0,)

    def test_a_taken_username_is_a_conflict(self, rt: Runtime) -> None:
        users.create(rt, ADMIN, username="bob", role="officer")
        with pytest.raises(Conflict) as refused:
            users.create(rt, ADMIN, username="BOB", role="auditor", password=PASSWORD)
        assert refused.value.status == 409

    def test_the_link_starts_with_the_public_url(self, rt: Runtime) -> None:
        there = dataclasses.replace(
            rt, settings=rt.settings.model_copy(update={"public_url": "https://border.example/"})
        )
        created = users.create(there, ADMIN, username="bob", role="officer")
        assert created.activation_url is not None
        assert created.activation_url.startswith("https://border.example/console/activate/")


class TestListAndFind:
    def test_list_is_audited_and_find_resolves_names(self, rt: Runtime, database_url: str) -> None:
        users.create(rt, ADMIN, username="bob", role="officer")
        provisioned(rt, "carol", "auditor")
        listed = users.list_users(rt, ADMIN)
        assert [(u.username, u.role, u.status) for u in listed] == [
            ("bob", "officer", "pending"),
            ("carol", "auditor", "active"),
        ]
        assert events(database_url, "users.list")[0]["detail"] == {"n": 2}
        found = users.find(rt, " Carol ")
        assert found is not None
        assert found.id == listed[1].id
        assert users.find(rt, "nobody") is None


class TestActivation:
    def test_the_holder_sets_a_password_and_enrols_the_authenticator(
        self, rt: Runtime, database_url: str
    ) -> None:
        created = users.create(rt, ADMIN, username="dora", role="officer")
        token = token_of(created.activation_url)
        shown = users.activation(rt, token)
        assert shown.needs_password is True
        assert shown.user.id == created.user.id
        assert shown.totp_uri == pyotp.TOTP(shown.totp_secret).provisioning_uri(
            name="dora", issuer_name="Border"
        )
        user = users.activate(rt, token, password=PASSWORD, code=code(shown.totp_secret))
        assert (user.status, user.admin_provisioned) == ("active", False)
        assert user.activated_at is not None
        [event] = events(database_url, "users.activate")
        assert event["actor"] == f"user:{user.id}"
        assert event["detail"] == {"admin_provisioned": False, "password_set": True}
        with pytest.raises(NotFound, match="unknown, used or expired"):
            users.activation(rt, token)
        session = sign_in(rt, shown.totp_secret, username="dora")
        assert session.user.id == user.id

    def test_a_wrong_code_or_password_is_named_and_changes_nothing(self, rt: Runtime) -> None:
        created = users.create(rt, ADMIN, username="dora", role="officer")
        token = token_of(created.activation_url)
        secret = users.activation(rt, token).totp_secret
        with pytest.raises(InvalidRequest) as refused:
            users.activate(rt, token, password=PASSWORD, code=wrong_code(secret))
        assert refused.value.extra["field"] == "code"
        with pytest.raises(InvalidRequest) as refused:
            users.activate(rt, token, password="dora", code=code(secret))
        assert refused.value.extra["field"] == "password"
        with pytest.raises(InvalidRequest) as refused:
            users.activate(rt, token, password=None, code=code(secret))
        assert refused.value.extra["field"] == "password"
        assert users.activation(rt, token).needs_password is True
        assert row(rt, "dora").status == "pending"

    def test_an_unknown_or_expired_link_is_not_found(self, rt: Runtime) -> None:
        with pytest.raises(NotFound, match="unknown, used or expired"):
            users.activation(rt, "no-such-token")
        created = users.create(rt, ADMIN, username="dora", role="officer")
        token = token_of(created.activation_url)
        past = datetime.now(UTC) - timedelta(seconds=1)
        rewrite(rt, dataclasses.replace(row(rt, "dora"), activation_expires_at=past))
        with pytest.raises(NotFound):
            users.activation(rt, token)
        with pytest.raises(NotFound):
            users.activate(rt, token, password=PASSWORD, code="000000")

    def test_a_link_slipped_into_the_database_opens_nothing(
        self, rt: Runtime, database_url: str
    ) -> None:
        """An insider who sets their own link on a pending account would choose its password
        and read its secret: the link is under the MAC."""
        users.create(rt, ADMIN, username="dora", role="officer")
        insider(
            database_url,
            "UPDATE users SET activation_sha256 = sha256(convert_to('mine', 'UTF8'))",
        )
        with pytest.raises(NotFound):
            users.activation(rt, "mine")


class TestResetTotp:
    def test_a_reset_asks_only_for_the_new_authenticator_and_keeps_the_password(
        self, rt: Runtime, database_url: str
    ) -> None:
        old_secret = provisioned(rt)
        session = sign_in(rt, old_secret, ahead=0)
        created = users.reset_totp(rt, ADMIN, "officer.one")
        assert created.user.status == "pending"
        assert created.totp_uri is None
        assert users.session(rt, session.token) is None
        token = token_of(created.activation_url)
        shown = users.activation(rt, token)
        assert shown.needs_password is False
        assert shown.totp_secret != old_secret
        with pytest.raises(Unauthorized):
            sign_in(rt, shown.totp_secret, ahead=0)
        users.activate(rt, token, password=None, code=code(shown.totp_secret))
        assert sign_in(rt, shown.totp_secret).user.status == "active"
        [event] = events(database_url, "users.reset_totp")
        assert event["detail"] == {"sessions_revoked": 1}

    def test_unknown_and_disabled_users_are_refused(self, rt: Runtime) -> None:
        with pytest.raises(NotFound):
            users.reset_totp(rt, ADMIN, "nobody")
        provisioned(rt)
        users.disable(rt, ADMIN, "officer.one")
        with pytest.raises(Conflict):
            users.reset_totp(rt, ADMIN, "officer.one")


class TestSignIn:
    def test_a_session_with_its_expiry_csrf_token_and_chain_event(
        self, rt: Runtime, database_url: str
    ) -> None:
        secret = provisioned(rt)
        before = datetime.now(UTC)
        session = sign_in(rt, secret, username=" Officer.One ")
        assert session.user.username == "officer.one"
        assert session.expires_at - session.created_at == timedelta(seconds=28_800)
        assert session.created_at >= before
        assert session.csrf_token
        assert session.csrf_token != session.token
        [event] = events(database_url, "sessions.create")
        assert event["actor"] == f"user:{session.user.id}"
        assert (event["role"], event["outcome"]) == ("officer", "ok")
        assert event["resource_id"] == str(session.id)
        assert event["detail"] == {"address": HERE}
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT token_sha256 FROM user_sessions").fetchone()
        assert stored is not None
        assert session.token.encode() not in bytes(stored[0])

    @pytest.mark.parametrize("wrong", ["password", "code", "username", "empty code"])
    def test_every_failure_gets_the_same_answer(self, rt: Runtime, wrong: str) -> None:
        secret = provisioned(rt)
        given = {
            "username": "nobody" if wrong == "username" else "officer.one",
            "password": "wrong password!" if wrong == "password" else PASSWORD,
            "code": {"code": wrong_code(secret), "empty code": ""}.get(wrong, code(secret)),
        }
        with pytest.raises(Unauthorized) as refused:
            users.sign_in(rt, address=HERE, **given)
        assert refused.value.detail == "the username, password or one-time code is wrong"

    def test_a_code_is_never_accepted_twice(self, rt: Runtime) -> None:
        secret = provisioned(rt)
        users.sign_out(rt, sign_in(rt, secret, ahead=1))
        with pytest.raises(Unauthorized):
            sign_in(rt, secret, ahead=1)
        with pytest.raises(Unauthorized):
            # An earlier step than one already used is no better.
            sign_in(rt, secret, ahead=0)

    def test_pending_and_disabled_users_cannot_sign_in(self, rt: Runtime) -> None:
        created = users.create(rt, ADMIN, username="dora", role="officer")
        secret = users.activation(rt, token_of(created.activation_url)).totp_secret
        with pytest.raises(Unauthorized):
            sign_in(rt, secret, username="dora")
        secret = provisioned(rt)
        users.disable(rt, ADMIN, "officer.one")
        with pytest.raises(Unauthorized):
            sign_in(rt, secret)

    def test_failures_are_audited_under_the_account_without_secrets(
        self, rt: Runtime, database_url: str
    ) -> None:
        secret = provisioned(rt)
        user = row(rt, "officer.one")
        with pytest.raises(Unauthorized):
            sign_in(rt, secret, password="wrong password!")
        [event] = events(database_url, "sessions.create")
        assert (event["actor"], event["outcome"]) == (f"user:{user.id}", "unauthorized")
        assert event["detail"] == {"address": HERE}

    def test_unknown_usernames_are_audited_anonymously_folded_per_address(
        self, rt: Runtime, database_url: str
    ) -> None:
        for typed in ("Tr0ub4dor&3-typed-here", "someone.else", "third.guess"):
            with pytest.raises(Unauthorized):
                users.sign_in(rt, username=typed, password=PASSWORD, code="123456", address=HERE)
        with pytest.raises(Unauthorized):
            users.sign_in(rt, username="x.y", password=PASSWORD, code="1", address=ELSEWHERE)
        recorded = events(database_url, "sessions.create")
        assert [(e["actor"], e["resource_id"], e["detail"]["failures"]) for e in recorded] == [
            ("anonymous", HERE, 1),
            ("anonymous", ELSEWHERE, 1),
        ]
        # A minute later, the next one is written with the failures folded since.
        insider(database_url, "UPDATE login_failures SET at = at - interval '61 seconds'")
        with pytest.raises(Unauthorized):
            users.sign_in(rt, username="fourth", password=PASSWORD, code="1", address=HERE)
        assert events(database_url, "sessions.create")[-1]["detail"] == {
            "address": HERE,
            "failures": 3,
        }
        text = all_events_text(database_url).lower()
        for typed in ("tr0ub4dor", "someone.else", "third.guess", "fourth", PASSWORD):
            assert typed.lower() not in text

    def test_an_outdated_hash_is_replaced_at_sign_in(self, rt: Runtime) -> None:
        secret = provisioned(rt)
        weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
        rewrite(rt, dataclasses.replace(row(rt, "officer.one"), password_hash=weak.hash(PASSWORD)))
        sign_in(rt, secret)
        stored = row(rt, "officer.one").password_hash
        assert stored is not None
        assert not argon2.PasswordHasher().check_needs_rehash(stored)
        assert argon2.PasswordHasher().verify(stored, PASSWORD)


class TestLockout:
    def fail(self, rt: Runtime, times: int, address: str = HERE) -> None:
        for _ in range(times):
            with pytest.raises(Unauthorized):
                users.sign_in(rt, username="officer.one", password="wrong password!",
                              code="123456", address=address)  # fmt: skip

    def test_five_failures_lock_the_pair_even_against_the_right_credentials(
        self, rt: Runtime, database_url: str
    ) -> None:
        secret = provisioned(rt)
        self.fail(rt, 5)
        with pytest.raises(RateLimited) as refused:
            sign_in(rt, secret, ahead=0)
        assert 890 <= refused.value.extra["retry_after_s"] <= 900
        assert refused.value.status == 429
        # Another address is not locked: an attacker elsewhere cannot lock an officer out.
        assert sign_in(rt, secret, address=ELSEWHERE).user.username == "officer.one"
        outcomes = [e["outcome"] for e in events(database_url, "sessions.create")]
        assert outcomes == ["unauthorized"] * 5 + ["rate_limited", "ok"]

    def test_the_lock_lasts_until_the_oldest_of_the_five_is_15_minutes_old(
        self, rt: Runtime, database_url: str
    ) -> None:
        secret = provisioned(rt)
        self.fail(rt, 5)
        insider(database_url, "UPDATE login_failures SET at = at - interval '10 minutes'")
        with pytest.raises(RateLimited) as refused:
            sign_in(rt, secret, ahead=0)
        assert 290 <= refused.value.extra["retry_after_s"] <= 300
        with pytest.raises(RateLimited):
            sign_in(rt, secret, ahead=0)
        # Only the first refusal of a lock reaches the chain.
        assert [e["outcome"] for e in events(database_url, "sessions.create")].count(
            "rate_limited"
        ) == 1
        insider(database_url, "UPDATE login_failures SET at = at - interval '5 minutes'")
        assert sign_in(rt, secret, ahead=0).user.username == "officer.one"

    def test_success_clears_the_pair_s_failures(self, rt: Runtime, database_url: str) -> None:
        secret = provisioned(rt)
        self.fail(rt, 4)
        sign_in(rt, secret)
        self.fail(rt, 4)
        forget_steps(database_url, "officer.one")
        assert sign_in(rt, secret).user.username == "officer.one"

    def test_an_address_spraying_usernames_waits_after_its_failure_budget(
        self, rt: Runtime
    ) -> None:
        """Each attempt costs a password hash: one address trying many usernames is held
        back by the service's throttle (10 failures a minute by default), whatever the
        usernames; another address is not."""
        secret = provisioned(rt)
        for n in range(rt.settings.auth_max_failures):
            with pytest.raises(Unauthorized):
                users.sign_in(rt, username=f"guess.{n}", password="wrong password!",
                              code="123456", address=HERE)  # fmt: skip
        with pytest.raises(RateLimited) as refused:
            users.sign_in(rt, username="guess.last", password="wrong password!",
                          code="123456", address=HERE)  # fmt: skip
        assert "from this address" in refused.value.detail
        assert sign_in(rt, secret, address=ELSEWHERE).user.username == "officer.one"

    def test_unknown_usernames_lock_alike(self, rt: Runtime) -> None:
        for _ in range(5):
            with pytest.raises(Unauthorized):
                users.sign_in(rt, username="ghost", password="x", code="1", address=HERE)
        with pytest.raises(RateLimited):
            users.sign_in(rt, username="ghost", password="x", code="1", address=HERE)


class TestRowIntegrity:
    @pytest.mark.parametrize(
        "tamper",
        [
            "UPDATE users SET role = 'admin'",
            "UPDATE users SET border_point = 'ELSEWHERE'",
            "UPDATE users SET admin_provisioned = false",
            "UPDATE users SET password_hash = password_hash || 'x'",
        ],
    )
    def test_a_row_edited_in_the_database_signs_nobody_in(
        self, rt: Runtime, database_url: str, tamper: str
    ) -> None:
        secret = provisioned(rt)
        session = sign_in(rt, secret, ahead=0)
        insider(database_url, tamper)
        assert users.session(rt, session.token) is None
        with pytest.raises(Unauthorized):
            sign_in(rt, secret)

    def test_an_inserted_admin_is_no_user(self, rt: Runtime, database_url: str) -> None:
        secret = pyotp.random_base32()
        insider(
            database_url,
            "INSERT INTO users (id, username, role, password_hash, status, admin_provisioned,"
            " created_at, mac) VALUES (%(id)s, 'mallory', 'admin', %(h)s, 'active', false,"
            " now(), %(mac)s)",
            {"id": uuid4(), "h": argon2.PasswordHasher().hash(PASSWORD), "mac": bytes(32)},
        )
        with pytest.raises(Unauthorized):
            sign_in(rt, secret, username="mallory")

    def test_disabling_a_tampered_row_never_blesses_it(
        self, rt: Runtime, database_url: str
    ) -> None:
        provisioned(rt)
        insider(database_url, "UPDATE users SET role = 'admin'")
        users.disable(rt, ADMIN, "officer.one")
        tampered = row(rt, "officer.one")
        assert tampered.mac != users.user_mac(rt.keys, tampered)
        with pytest.raises(Conflict):
            users.reset_totp(rt, ADMIN, "officer.one")


class TestSessions:
    def test_a_cookie_finds_its_session(self, rt: Runtime) -> None:
        secret = provisioned(rt)
        session = sign_in(rt, secret)
        found = users.session(rt, session.token)
        assert found is not None
        assert (found.id, found.user, found.csrf_token) == (
            session.id,
            session.user,
            session.csrf_token,
        )
        assert users.session(rt, None) is None
        assert users.session(rt, "") is None
        assert users.session(rt, "not-a-token") is None

    def test_an_idle_session_ends(self, rt: Runtime, database_url: str) -> None:
        session = sign_in(rt, provisioned(rt))
        insider(database_url, "UPDATE user_sessions SET last_seen_at = now() - interval '901 s'")
        assert users.session(rt, session.token) is None

    def test_use_moves_the_idle_limit(self, rt: Runtime, database_url: str) -> None:
        session = sign_in(rt, provisioned(rt))
        insider(database_url, "UPDATE user_sessions SET last_seen_at = now() - interval '600 s'")
        seen = users.session(rt, session.token)
        assert seen is not None
        assert datetime.now(UTC) - seen.last_seen_at < timedelta(seconds=5)
        insider(
            database_url,
            "UPDATE user_sessions SET last_seen_at = last_seen_at - interval '600 s'",
        )
        assert users.session(rt, session.token) is not None

    def test_the_settings_bound_idle_and_absolute_time(
        self, rt: Runtime, database_url: str
    ) -> None:
        session = sign_in(rt, provisioned(rt))
        insider(database_url, "UPDATE user_sessions SET last_seen_at = now() - interval '20 s'")
        strict = dataclasses.replace(
            rt, settings=rt.settings.model_copy(update={"session_idle_s": 10.0})
        )
        assert users.session(strict, session.token) is None
        insider(
            database_url,
            "UPDATE user_sessions SET created_at = now() - interval '2 hours',"
            " last_seen_at = now()",
        )
        short = dataclasses.replace(
            rt, settings=rt.settings.model_copy(update={"session_max_s": 3600.0})
        )
        assert users.session(short, session.token) is None
        assert users.session(rt, session.token) is not None

    def test_a_session_ends_at_its_absolute_expiry(self, rt: Runtime, database_url: str) -> None:
        session = sign_in(rt, provisioned(rt))
        insider(database_url, "UPDATE user_sessions SET expires_at = now() - interval '1 s'")
        assert users.session(rt, session.token) is None

    def test_sign_out_ends_the_session_and_is_audited_once(
        self, rt: Runtime, database_url: str
    ) -> None:
        session = sign_in(rt, provisioned(rt))
        users.sign_out(rt, session)
        users.sign_out(rt, session)
        assert users.session(rt, session.token) is None
        [event] = events(database_url, "sessions.revoke")
        assert event["actor"] == f"user:{session.user.id}"
        assert event["resource_id"] == str(session.id)

    def test_disabling_a_user_ends_every_session(self, rt: Runtime, database_url: str) -> None:
        secret = provisioned(rt)
        first = sign_in(rt, secret, ahead=0)
        second = sign_in(rt, secret, ahead=1, address=ELSEWHERE)
        user = users.disable(rt, ADMIN, "officer.one")
        assert user.status == "disabled"
        assert user.disabled_at is not None
        assert users.session(rt, first.token) is None
        assert users.session(rt, second.token) is None
        with psycopg.connect(database_url) as conn:
            live = conn.execute("SELECT count(*) FROM user_sessions WHERE revoked_at IS NULL")
            assert live.fetchone() == (0,)
        [event] = events(database_url, "users.disable")
        assert event["detail"] == {"sessions_revoked": 2}
        with pytest.raises(NotFound):
            users.disable(rt, ADMIN, "nobody")

    def test_disabling_kills_a_pending_link(self, rt: Runtime) -> None:
        created = users.create(rt, ADMIN, username="dora", role="officer")
        users.disable(rt, ADMIN, "dora")
        with pytest.raises(NotFound):
            users.activation(rt, token_of(created.activation_url))

    def test_expired_sessions_are_removed_at_the_next_sign_in(
        self, rt: Runtime, database_url: str
    ) -> None:
        secret = provisioned(rt)
        old = sign_in(rt, secret, ahead=0)
        users.set_purpose(rt, old, uuid4(), "case 1")
        insider(database_url, "UPDATE user_sessions SET expires_at = now() - interval '1 s'")
        sign_in(rt, secret, ahead=1)
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM user_sessions").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM session_purposes").fetchone() == (0,)


class TestCsrf:
    def test_the_token_is_the_session_s_own(self, rt: Runtime, database_url: str) -> None:
        secret = provisioned(rt)
        session = sign_in(rt, secret, ahead=0)
        other = sign_in(rt, secret, ahead=1)
        assert users.check_csrf(rt, session, session.csrf_token)
        assert not users.check_csrf(rt, session, None)
        assert not users.check_csrf(rt, session, "")
        assert not users.check_csrf(rt, session, other.csrf_token)
        # One character changed (the first: every bit of it counts, unlike the last's).
        first = session.csrf_token[0]
        tampered = ("B" if first != "B" else "C") + session.csrf_token[1:]
        assert not users.check_csrf(rt, session, tampered)
        assert not users.check_csrf(rt, session, session.token)
        again = users.session(rt, session.token)
        assert again is not None
        assert users.check_csrf(rt, again, session.csrf_token)


class TestPrincipalAndPurposes:
    def test_the_principal_is_the_user(self, rt: Runtime) -> None:
        secret = provisioned(rt, "olga", "officer", border_point="UTO-AIR-1")
        session = sign_in(rt, secret, username="olga")
        principal = users.principal(session, "case 7")
        assert principal == auth.Principal(
            client_id=None,
            role="officer",
            border_point="UTO-AIR-1",
            purpose="case 7",
            user_id=session.user.id,
        )
        assert principal.actor == f"user:{session.user.id}"
        assert users.principal(session).purpose is None

    def test_a_purpose_per_person_per_session(self, rt: Runtime) -> None:
        secret = provisioned(rt)
        session = sign_in(rt, secret, ahead=0)
        other = sign_in(rt, secret, ahead=1)
        person, stranger = uuid4(), uuid4()
        assert users.purpose_for(rt, session, person) is None
        users.set_purpose(rt, session, person, "  case 2024/17 ")
        assert users.purpose_for(rt, session, person) == "case 2024/17"
        assert users.purpose_for(rt, session, stranger) is None
        assert users.purpose_for(rt, other, person) is None
        users.set_purpose(rt, session, person, "case 2024/18")
        assert users.purpose_for(rt, session, person) == "case 2024/18"

    @pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "two\nlines"])
    def test_a_bad_purpose_is_named(self, rt: Runtime, bad: str) -> None:
        session = sign_in(rt, provisioned(rt))
        with pytest.raises(InvalidRequest) as refused:
            users.set_purpose(rt, session, uuid4(), bad)
        assert refused.value.extra["field"] == "purpose"


class TestNames:
    def test_user_actors_get_their_names_and_others_are_left_out(self, rt: Runtime) -> None:
        provisioned(rt, "carol", "auditor")
        carol = row(rt, "carol").id
        ghost = uuid4()
        actors = [f"user:{carol}", f"user:{ghost}", "user:not-a-uuid", "cli:1000", str(uuid4())]
        with rt.pool.connection() as conn:
            assert users.names(conn, actors) == {f"user:{carol}": "carol"}
            assert users.names(conn, []) == {}


class TestAuditHoldsNoSecrets:
    def test_no_password_secret_link_or_token_reaches_the_chain(
        self, rt: Runtime, database_url: str
    ) -> None:
        created = users.create(rt, ADMIN, username="dora", role="officer")
        token = token_of(created.activation_url)
        secret = users.activation(rt, token).totp_secret
        users.activate(rt, token, password=PASSWORD, code=code(secret))
        session = sign_in(rt, secret, username="dora")
        with pytest.raises(Unauthorized):
            sign_in(rt, secret, username="dora", password="wrong password!")
        reset = users.reset_totp(rt, ADMIN, "dora")
        users.sign_out(rt, session)
        text = all_events_text(database_url)
        for needle in (PASSWORD, secret, token, session.token, session.csrf_token,
                       token_of(reset.activation_url), "dora"):  # fmt: skip
            assert needle not in text
        assert len(events(database_url, "sessions.create")) == 2


class TestKeyRotation:
    def test_users_keys_are_rewrapped_and_still_open(self, rt: Runtime) -> None:
        secret = provisioned(rt)
        rotated = service.rotate_keys(rt, ADMIN)
        assert rotated.version == 2
        assert rotated.rewrapped >= 2
        session = sign_in(rt, secret)
        assert users.session(rt, session.token) is not None
        with rt.pool.connection() as conn:
            stored = store.user_by_name(conn, "officer.one")
            assert stored is not None
            found = conn.execute(
                "SELECT key_version FROM data_keys WHERE owner_id = %s", (stored.id,)
            ).fetchone()
        assert found == (2,)


def test_failure_keys_are_per_account_and_address() -> None:
    assert users.failure_key("Bob", HERE) == users.failure_key(" bob", HERE)
    assert users.failure_key("bob", HERE) != users.failure_key("bob", ELSEWHERE)


def test_the_service_may_not_delete_users_nor_rewrite_failures(database_url: str) -> None:
    """Accounts are disabled in place (their ids stay the actors of the audit log); failed
    sign-ins are written once and only removed (0012's service_privileges rows)."""
    with psycopg.connect(database_url) as conn:
        held = {
            (table, privilege): conn.execute(
                "SELECT has_table_privilege('border_app', %s, %s)", (table, privilege)
            ).fetchone()
            == (True,)
            for table in ("users", "login_failures", "session_purposes", "user_sessions")
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
        }
    assert not held["users", "DELETE"]
    assert held["users", "UPDATE"]
    assert not held["login_failures", "UPDATE"]
    assert held["login_failures", "DELETE"]
    assert not held["session_purposes", "DELETE"]
    assert all(held["user_sessions", p] for p in ("SELECT", "INSERT", "UPDATE", "DELETE"))


def test_one_code_used_from_two_places_at_once_opens_one_session(rt: Runtime) -> None:
    secret = provisioned(rt)
    given = code(secret, 1)
    addresses = iter([HERE, ELSEWHERE])

    def attempt() -> str:
        try:
            users.sign_in(
                rt, username="officer.one", password=PASSWORD, code=given, address=next(addresses)
            )
        except Unauthorized:
            return "refused"
        return "signed in"

    assert sorted(in_parallel(attempt, 2)) == ["refused", "signed in"]

"""What an attack session on the console tried, refused: photos and changes without a
purpose of access, a visa revoked through another person's page, formulas in purposes and
CSV cells, dates past the calendar, the console CSP on static files, a form body read
before the session, and a sign-in posted from another site."""

from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect

from border.console.web import csv_cell
from core import auth
from tests.console.conftest import Account, LiveService, enroll
from tests.factories import td3
from visa import models as visa_models
from visa import service as visa_service


def token(page: Page) -> str:
    return page.locator("input[name=csrf]").first.input_value()


def visa_for(live: LiveService, person_id: object) -> str:
    record = visa_service.issue_visa(
        live.rt,
        auth.Principal(None, "consular", None, "test setup"),
        visa_models.VisaIn.model_validate(
            {
                "person_id": str(person_id),
                "visa_type": "C",
                "issuing_state": "UTO",
                "valid_from": "2027-01-01",
                "valid_until": "2027-03-01",
                "entries": "MULT",
                "duration_of_stay_days": 30,
            }
        ),
    )
    return str(record.visa_id)


class TestPurposeOfAccess:
    def test_no_photo_or_change_without_a_purpose(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live)
        signed_in("consular")
        page.goto("/console/search")
        csrf = token(page)
        assert page.request.get(f"/console/persons/{person_id}/photo.jpg").status == 403
        # Beside a referral or a candidate list, the context is the purpose.
        shown = page.request.get(f"/console/persons/{person_id}/photo.jpg?for=enrollment")
        assert shown.status == 200
        assert shown.headers["content-type"] == "image/jpeg"
        issued = page.request.post(
            f"/console/persons/{person_id}/visas",
            form={
                "csrf": csrf,
                "visa_type": "C",
                "issuing_state": "UTO",
                "valid_from": "2027-01-01",
                "valid_until": "2027-02-01",
                "entries": "1",
                "duration_of_stay_days": "10",
            },
        )
        assert issued.status == 403
        with live.rt.pool.connection() as conn:
            row = conn.execute(
                "SELECT purpose FROM audit_events WHERE action = 'captures.image.read'"
            ).fetchall()
        assert row == [("enrollment duplicate check",)]

    def test_a_visa_is_revoked_only_from_its_holders_page(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        holder = enroll(live, "obama.jpg", td3(number="P0000001"))
        other = enroll(live, "biden.jpg", td3(number="P0000002", surname="OTHER"))
        visa_id = visa_for(live, holder)
        signed_in("consular")
        page.goto(f"/console/persons/{other}")
        page.get_by_label("Purpose").fill("case 9")
        page.get_by_role("button", name="Continue").click()
        refused = page.request.post(
            f"/console/persons/{other}/visas/{visa_id}/revoke", form={"csrf": token(page)}
        )
        assert refused.status == 404
        with live.rt.pool.connection() as conn:
            state = conn.execute(
                "SELECT revoked_at IS NULL FROM visas WHERE id = %s", (visa_id,)
            ).fetchone()
        assert state == (True,)

    def test_a_purpose_is_a_case_reference_not_a_formula(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live)
        signed_in("officer")
        page.goto(f"/console/persons/{person_id}")
        page.get_by_label("Purpose").fill('=HYPERLINK("http://example.org")')
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("#f-purpose-error")).to_contain_text("case reference")
        expect(page.get_by_role("heading", level=1)).to_have_text("Purpose of access")


def test_csv_cells_never_start_a_formula() -> None:
    assert csv_cell("=SUM(A1)") == "'=SUM(A1)"
    assert csv_cell("+1") == "'+1"
    assert csv_cell("@x") == "'@x"
    assert csv_cell("case 7") == "case 7"
    assert csv_cell(None) == ""
    assert csv_cell(12) == "12"


def test_a_date_past_the_calendar_is_refused_beside_its_field(
    page: Page, signed_in: Callable[..., Account]
) -> None:
    signed_in("auditor")
    response = page.goto("/console/audit?to=9999-12-31")
    assert response is not None
    assert response.status == 422
    expect(page.locator("#f-to-error")).to_have_text("a date is written YYYY-MM-DD")
    assert page.goto("/console/audit?from=0001-01-01").status == 200  # type: ignore[union-attr]


def test_static_files_carry_the_consoles_csp(page: Page, live: LiveService) -> None:
    response = page.request.get("/console/static/console.css")
    assert response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_post_without_a_session_is_sent_to_sign_in_unread(
    browser: Browser, live: LiveService
) -> None:
    context = browser.new_context(base_url=live.url)
    response = context.request.post(
        "/console/enroll",
        headers={"content-type": "multipart/form-data"},  # no boundary: unreadable
        data=b"x" * 1000,
        max_redirects=0,
    )
    assert response.status == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fenroll"
    context.close()


def test_a_sign_in_posted_from_another_site_is_refused(browser: Browser, live: LiveService) -> None:
    from tests.console.conftest import new_account

    account = new_account(live.rt, "officer")
    context = browser.new_context(base_url=live.url)
    for headers in ({"sec-fetch-site": "cross-site"}, {"origin": "https://elsewhere.example"}):
        response = context.request.post(
            "/console/login",
            form={
                "username": account.username,
                "password": account.password,
                "code": account.code(),
            },
            headers=headers,
            max_redirects=0,
        )
        assert response.status == 403
    assert context.cookies() == []
    context.close()

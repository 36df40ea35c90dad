"""The browser tests' own tools can fail: axe-core finds a violation where there is one."""

import pytest
from playwright.sync_api import Browser

from tests.console.conftest import check_accessibility


def test_axe_finds_an_unlabelled_field_and_a_missing_alt(browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
        '<input id="x"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "</main></body></html>"
    )
    with pytest.raises(AssertionError) as found:
        check_accessibility(page)
    assert "label" in str(found.value)
    assert "image-alt" in str(found.value)
    context.close()

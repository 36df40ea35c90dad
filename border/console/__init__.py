"""The staff console (DESIGN §11): server-rendered pages under /console for consular staff,
officers, auditors and admins, signed in with their own accounts (core/users.py), never
with API keys."""

from fastapi import APIRouter

from border.console import admin, audit_pages, officer, people, signin, statistics_pages, web

router = APIRouter(include_in_schema=False)
router.include_router(signin.router)
router.include_router(audit_pages.router)
router.include_router(people.router)
router.include_router(officer.router)
router.include_router(admin.router)
router.include_router(statistics_pages.router)

__all__ = ["router", "web"]

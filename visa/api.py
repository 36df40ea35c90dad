"""Routes of visa/: MRZ parsing, visas."""

from fastapi import APIRouter

router = APIRouter(tags=["visa"])

"""Routes of visa/: MRZ parsing, visas, the chip's trust store."""

from uuid import UUID

from fastapi import APIRouter, status

from core.auth import Admin, Consular, ConsularOrOfficer
from core.runtime import RuntimeDep
from visa import models, pki, service

router = APIRouter(tags=["visa"])


@router.post("/mrz/parse", name="mrz.parse")
def parse_mrz(body: models.MrzIn, principal: ConsularOrOfficer, rt: RuntimeDep) -> models.MrzOut:
    return service.parse_mrz(rt, principal, body.mrz)


@router.post("/visas", status_code=status.HTTP_201_CREATED, name="visas.issue")
def issue_visa(body: models.VisaIn, principal: Consular, rt: RuntimeDep) -> models.VisaRecord:
    return service.issue_visa(rt, principal, body)


@router.post("/visas/{visa_id}/revoke", name="visas.revoke")
def revoke_visa(visa_id: UUID, principal: Consular, rt: RuntimeDep) -> models.VisaRecord:
    return service.revoke_visa(rt, principal, visa_id)


@router.get("/pki", name="pki.read")
def read_pki(principal: Admin, rt: RuntimeDep) -> models.PkiOut:
    """The chip's trust store: the CSCA anchors (country as ICAO code, subject, validity,
    SHA-256) and the CRLs imported with `border pki import FILE`."""
    return pki.list_trust(rt, principal)

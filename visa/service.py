"""Use cases of visa/: reading a document's MRZ for the routes and other packages."""

from core.errors import BorderError
from visa import mrz


class MrzInvalid(BorderError):
    code = "mrz_invalid"
    status = 422


def read_mrz(text: str) -> mrz.MRZ:
    """Parse an MRZ, or refuse it with ``mrz_invalid`` naming the field and the reason."""
    try:
        return mrz.parse_mrz(text)
    except mrz.MRZError as exc:
        raise MrzInvalid(str(exc), field=exc.field, reason=exc.reason) from None

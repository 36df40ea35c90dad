"""Blind indexes: keyed fingerprints that find a document's holder, a person by name, or an
alert, without decrypting a row. Every key here is ``HMAC(blind-index key, text)``; the
texts of the different kinds cannot collide (a document's has one ``|``, a name's three).
"""

from core.keys import Keyring
from visa.mrz import MRZ, mrz_name_forms, normalise_name


def document_index(keys: Keyring, issuing_state: str, number: str) -> bytes:
    """``HMAC(STATE|NUMBER)``: the holder in ``documents`` and document alerts alike."""
    return keys.blind_index(f"{issuing_state}|{number}")


def name_key(keys: Keyring, surname: str, given_names: str, birth: str) -> bytes:
    """A normalised name with a birth date (YYYY-MM-DD, or YYYY for alerts that know only
    the year): ``persons.name_index`` and name alerts use the same key."""
    return keys.blind_index(f"name|{surname}|{given_names}|{birth}")


def name_keys(keys: Keyring, surname: str, given_names: str, birth: str) -> list[bytes]:
    """Keys of every form an MRZ prints the name in (full, and truncated to each format's
    name field), so a truncated name read at a kiosk still finds it."""
    return sorted(name_key(keys, s, g, birth) for s, g in mrz_name_forms(surname, given_names))


def document_name_keys(keys: Keyring, document: MRZ) -> list[bytes]:
    """The name keys a presented document produces: its name as read, with the full birth
    date and with the bare year. None without a birth date: a name alone is too common to
    flag anyone by."""
    if document.birth_date is None:
        return []
    surname, given = normalise_name(document.surname), normalise_name(document.given_names)
    birth = document.birth_date
    return [
        name_key(keys, surname, given, birth.isoformat()),
        name_key(keys, surname, given, f"{birth.year:04d}"),
    ]

"""Fingerprint stage: name the software behind a DICOM endpoint, and the AE titles to try.

``identify`` reads the implementation identity of an A-ASSOCIATE-AC against data-driven
signatures (``pacsaudit/data/signatures.toml``); the dictionaries list the called and calling
AE titles worth trying, most likely first. Everything here is pure: no sockets.
"""

from pacsaudit.fingerprint.ae_titles import (
    called_ae_dictionary,
    calling_ae_dictionary,
    is_valid_ae_title,
)
from pacsaudit.fingerprint.implementation import Identification, identify

__all__ = [
    "Identification",
    "called_ae_dictionary",
    "calling_ae_dictionary",
    "identify",
    "is_valid_ae_title",
]

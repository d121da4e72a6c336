"""The agencies' contacts: who is told when one of an agency's subscriptions is disabled.
notifications' own configuration, like the coordinating teams (coordinators.py): a YAML file
named by NOTIFICATIONS_AGENCY_CONTACTS (default deploy/local/agencies.yaml) maps each agency
code (as its keys and subscriptions name it) to the named contact who looks after its
subscriptions, their work email and language.

    agencies:
      dev-police:
        name: Data-sharing lead, Dyfed-Powys Police (demo)
        email: rj-data-sharing@dev-police.example.org
        language: en

A contact's name and address are read here and put into the message only: never into an
event, a delivery or a log line (the events name the agency by its code). The file is
checked strictly when the service starts (`load`). A subscription of an agency with no
contact is never passed over in silence: `lookup` raises NoAgencyContact, naming the
agency's code, and the event is retried and then dead-lettered with that reason, to be
replayed once the contact is configured (docs/notifications.md).
"""
from dataclasses import dataclass

from services.notifications import directory

DEFAULT_PATH = "deploy/local/agencies.yaml"
SETTING = "NOTIFICATIONS_AGENCY_CONTACTS"
# an agency's recipient id on a notice and a delivery: `agencies.<code>`
PREFIX = "agencies."


class AgencyContactsError(ValueError):
    """The agencies' contacts file cannot be used; the message names the file and the fault."""


class NoAgencyContact(RuntimeError):
    """An agency has no contact configured: nobody can be told about its subscriptions."""

    def __init__(self, agency):
        self.agency = agency
        super().__init__(f"no contact is configured for agency {agency!r} ({SETTING})")


@dataclass(frozen=True)
class AgencyContact:
    agency: str
    name: str
    email: str
    language: str


def contact_id(agency):
    return f"{PREFIX}{agency}"


class AgencyContacts(directory.Directory):
    """Agency code -> AgencyContact, answering lookups in the contact holders' shape (CONTRACTS.md)."""
    prefix = PREFIX
    missing = NoAgencyContact


def parse(document, source="(given)"):
    """AgencyContacts from the file's parsed YAML; AgencyContactsError naming each fault. An empty
    mapping is allowed: a deployment no agency subscribes to."""
    contacts = directory.entries(document, source, "agencies", "Not an agency code.", AgencyContactsError)
    return AgencyContacts({agency: AgencyContact(agency=agency, **contact) for agency, contact in contacts.items()},
                          source)


def load(path=None):
    """The contacts in the file at `path` (None: the default; relative: to the project root)."""
    path, document = directory.read_document(path or DEFAULT_PATH, AgencyContactsError)
    return parse(document, path)

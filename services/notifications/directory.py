"""notifications' own directories of work contacts: a YAML file mapping a code (a region, an
agency) to the name, work email and language (en|cy) of whoever is told. The coordinating
teams (coordinators.py) and the agencies' contacts (agencies.py) are two such files.

What they share is here: reading a file (relative paths are to the project root), checking it
strictly, so that each fault is named with the file and the field, and answering lookups in the
contact holders' shape (CONTRACTS.md). A code with no entry raises the directory's own error,
naming the code: nobody to tell is never passed over in silence.
"""
import os

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.events.vocabulary import CODE_PATTERN, LANGUAGES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ContactSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Str(required=True, validate=[validate.Length(min=1, max=200),
                                               validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="No control characters.")])
    email = fields.Email(required=True, validate=validate.Length(max=254))
    language = fields.Str(required=True, validate=validate.OneOf(LANGUAGES))


def entries(document, source, key, code_error, error, at_least=0):
    """{code: {name, email, language}} of a directory file's parsed YAML (`key` mapping each code
    to a contact); `error` naming the file and each fault. `code_error` words a key that is no code."""
    if not isinstance(document, dict):
        raise error(f"{source}: the file must be a mapping with `{key}`")
    schema = Schema.from_dict({key: fields.Dict(
        required=True, validate=validate.Length(min=at_least),
        keys=fields.Str(validate=[validate.Regexp(CODE_PATTERN, error=code_error), validate.Length(max=50)]),
        values=fields.Nested(ContactSchema))})
    try:
        return schema(unknown=RAISE).load(document)[key]
    except ValidationError as exc:
        raise error(f"{source}: {faults(exc.messages)}") from None


def read_document(path, error):
    """(the absolute path, its parsed YAML) of a directory file; `error` naming the file if it
    cannot be read or is no YAML."""
    if not os.path.isabs(path):
        path = os.path.join(ROOT, path)
    try:
        with open(path) as handle:
            return path, yaml.safe_load(handle)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{path}{where}: not valid YAML") from None


def faults(messages, prefix=""):
    """marshmallow's nested messages as `teams.gwent.email: Not a valid email address.; ...`."""
    found = []
    for key, value in messages.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            # a Dict field reports {"key": [...], "value": {...}} for each entry at fault
            if set(value) <= {"key", "value"} and value:
                if "key" in value:
                    found.append(f"{where}: {' '.join(value['key'])}")
                if "value" in value:
                    found.append(faults(value["value"], where))
            else:
                found.append(faults(value, where))
        else:
            found.append(f"{where or 'the file'}: {' '.join(map(str, value))}")
    return "; ".join(found)


class Directory:
    """Code -> contact (anything with `name`, `email` and `language`). A recipient id is the
    code after `prefix`; a code with no contact raises `missing(code)`."""
    prefix = ""
    missing = LookupError

    def __init__(self, contacts, source="(given)"):
        self.entries = dict(contacts)
        self.source = source

    def __len__(self):
        return len(self.entries)

    def code_of(self, recipient_id):
        return recipient_id[len(self.prefix):] if recipient_id.startswith(self.prefix) else recipient_id

    def lookup(self, recipient_id):
        contact = self.entries.get(self.code_of(recipient_id))
        if contact is None:
            raise self.missing(self.code_of(recipient_id))
        return {"granted": True, "reason": "granted", "details": {
            "name": contact.name, "email": contact.email, "language": contact.language, "preferred_channels": ["email"]}}

"""The words of each notification: pure rendering, no I/O.

A message is built only from the event and the recipient's own released details,
so nothing about one party can appear in what another party is sent.
"""
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class Message:
    template: str
    subject: str
    text: str


def facilitator_assigned_for_referrer(case_id, recipient_name):
    return Message(
        template="referrer.facilitator_assigned",
        subject=f"Restorative justice referral {case_id}: facilitator assigned",
        text=(
            f"Dear {recipient_name},\n\n"
            f"Your restorative justice referral {case_id} has been assessed as suitable, "
            "and a trained facilitator has been assigned to it.\n\n"
            "The facilitator will now contact the people involved, in line with their consent "
            "and contact preferences. You do not need to do anything further at this stage.\n\n"
            "Amends restorative justice service\n"
        ),
    )


def as_email(message, *, sender, recipient, message_id):
    email = EmailMessage()
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = message.subject
    # Derived from the delivery key, so a copy sent twice is recognisably the same message.
    email["Message-ID"] = message_id
    email["X-Amends-Template"] = message.template
    email.set_content(message.text)
    return email

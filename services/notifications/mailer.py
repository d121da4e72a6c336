"""Email over SMTP."""
import smtplib
import socket

from services.notifications import messages
from services.notifications.couriers import SendFailed


class Mailer:
    def __init__(self, host="127.0.0.1", port=1025, sender="Amends <no-reply@amends.local>", reply_to=None,
                 timeout=20):
        self.host = host
        self.port = int(port)
        self.sender = sender
        self.reply_to = reply_to
        self.timeout = timeout

    def send_message(self, message, recipient, notification_id):
        self.send(messages.as_email(
            message, sender=self.sender, recipient=recipient, message_id=f"<{notification_id}@amends.local>",
            reply_to=self.reply_to))

    def send(self, email):
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                refused = smtp.send_message(email)
        except smtplib.SMTPResponseException as exc:  # includes a refused sender, recipient or data
            raise SendFailed(f"smtp_{exc.smtp_code}")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise SendFailed(f"smtp_{codes[0] if codes else 'refused'}")
        except (smtplib.SMTPException, socket.timeout) as exc:
            raise SendFailed("smtp_error" if isinstance(exc, smtplib.SMTPException) else "smtp_timeout")
        except OSError:
            raise SendFailed("smtp_unreachable")
        if refused:
            raise SendFailed("smtp_recipient_refused")

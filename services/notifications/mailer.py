"""Email over SMTP, configured from the environment."""
import os
import smtplib


class Mailer:
    def __init__(self, host=None, port=None, sender=None):
        self.host = host or os.environ.get("SMTP_HOST", "127.0.0.1")
        self.port = int(port or os.environ.get("SMTP_PORT", "1025"))
        self.sender = sender or os.environ.get("SMTP_FROM", "Amends <no-reply@amends.local>")

    def send(self, email):
        with smtplib.SMTP(self.host, self.port, timeout=20) as smtp:
            smtp.send_message(email)

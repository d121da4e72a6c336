"""The channels a message can go by, and what a failed send looks like.

A `SendFailed` carries a short code (`smtp_451`, `http_503`, `smtp_unreachable`...)
and never the server's text, which can quote the address it refused.
"""


class SendFailed(RuntimeError):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


class Couriers:
    """Email always; SMS when a gateway is configured."""

    def __init__(self, mailer, sms=None):
        self.mailer = mailer
        self.sms = sms

    def available(self):
        return ("email", "sms") if self.sms is not None else ("email",)

    def send(self, channel, address, message, notification_id):
        if channel == "email":
            self.mailer.send_message(message, address, notification_id)
        elif channel == "sms":
            self.sms.send(address, message.sms, reference=notification_id)
        else:
            raise SendFailed(f"{channel}_unsupported")

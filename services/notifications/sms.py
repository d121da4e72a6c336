"""SMS through an HTTP gateway shaped like GOV.UK Notify.

`POST {base_url}/v2/notifications/sms` with a JSON body holding `phone_number`,
`reference`, and either `template_id` + `personalisation` (Notify proper: a template
in the Notify account whose only content is `((body))`) or `body` (gateways that
take the text itself). The API key comes from the environment. A Notify key
(`{name}-{service id}-{secret}`) authenticates with Notify's short-lived HS256 JWT;
any other key is sent as a plain Bearer token.
"""
import base64
import hashlib
import hmac
import json
import re
import time

import requests

from services.notifications.couriers import SendFailed

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOTIFY_KEY = re.compile(rf"^(?:.+-)?(?P<service>{UUID})-(?P<secret>{UUID})$")
PATH = "/v2/notifications/sms"


def _b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def notify_token(service_id, secret, now=None):
    """The JWT Notify expects: issuer the service id, issued-at now, signed HS256 with the secret."""
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    claims = _b64(json.dumps({"iss": service_id, "iat": int(now or time.time())}, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


class SmsGateway:
    def __init__(self, base_url, api_key, template_id=None, timeout=15):
        self.url = base_url.rstrip("/") + PATH
        self.api_key = api_key
        self.template_id = template_id or None
        self.timeout = timeout
        self.session = requests.Session()

    def _authorization(self):
        match = NOTIFY_KEY.match(self.api_key)
        token = notify_token(match["service"], match["secret"]) if match else self.api_key
        return f"Bearer {token}"

    def request_body(self, phone_number, text, reference):
        body = {"phone_number": phone_number, "reference": reference}
        if self.template_id:
            body.update(template_id=self.template_id, personalisation={"body": text})
        else:
            body["body"] = text
        return body

    def send(self, phone_number, text, reference):
        if not text:
            raise SendFailed("sms_no_text")
        try:
            response = self.session.post(self.url, json=self.request_body(phone_number, text, reference),
                                         timeout=self.timeout, headers={"Authorization": self._authorization()})
        except requests.Timeout:
            raise SendFailed("http_timeout")
        except requests.RequestException:
            raise SendFailed("http_unreachable")
        if response.status_code >= 300:
            raise SendFailed(f"http_{response.status_code}")
        return response

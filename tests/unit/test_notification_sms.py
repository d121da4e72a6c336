"""The Notify-shaped SMS adapter's requests and authentication (pure)."""
import base64
import hashlib
import hmac
import json
import uuid

from services.notifications.sms import SmsGateway, notify_token


def _decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_notify_key_signs_a_short_lived_jwt_with_its_secret():
    service, secret = str(uuid.uuid4()), str(uuid.uuid4())
    gateway = SmsGateway("https://api.notify.example/", f"live_key-{service}-{secret}")
    assert gateway.url == "https://api.notify.example/v2/notifications/sms"
    header, claims, signature = gateway._authorization().removeprefix("Bearer ").split(".")
    assert json.loads(_decode(header)) == {"typ": "JWT", "alg": "HS256"}
    assert json.loads(_decode(claims))["iss"] == service
    assert _decode(signature) == hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()


def test_the_token_changes_with_the_time_it_is_issued():
    assert notify_token("s", "k", now=1000) != notify_token("s", "k", now=1001)


def test_another_gateways_key_is_a_plain_bearer_token():
    assert SmsGateway("http://127.0.0.1:9", "plain-secret")._authorization() == "Bearer plain-secret"


def test_the_body_is_sent_as_text_or_through_a_notify_template():
    plain = SmsGateway("http://127.0.0.1:9", "k").request_body("+447700900001", "Hello", "n-1")
    assert plain == {"phone_number": "+447700900001", "reference": "n-1", "body": "Hello"}
    templated = SmsGateway("http://127.0.0.1:9", "k", template_id="t-1").request_body("+447700900001", "Hello", "n-1")
    assert templated == {"phone_number": "+447700900001", "reference": "n-1", "template_id": "t-1",
                         "personalisation": {"body": "Hello"}}

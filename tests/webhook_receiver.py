"""The webhook receiver the tests and benchmark use: the demo's own (scripts/webhook_receiver.py)."""
from scripts.webhook_receiver import Receiver, Request, verifies  # noqa: F401

"""A local stand-in for an SMS provider, for `make demo`: it takes GOV.UK Notify-shaped
requests (`POST /v2/notifications/sms`) on 127.0.0.1 and appends each to a JSON-lines
file a user can read, as the local SMTP server keeps mail in a Maildir.

    python deploy/local/sms_sink.py --port 8025 --out var/sms/messages.jsonl
"""
import argparse
import json
import os
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v2/notifications/sms"


def handler_for(out):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != PATH:
                return self._answer(404, {"errors": [{"error": "NotFound", "message": "no such endpoint"}]})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            except ValueError:
                return self._answer(400, {"errors": [{"error": "BadRequest", "message": "body is not JSON"}]})
            if not body.get("phone_number") or not (body.get("body") or body.get("template_id")):
                return self._answer(400, {"errors": [{"error": "ValidationError",
                                                      "message": "phone_number and body or template_id required"}]})
            record = {"id": str(uuid.uuid4()), "received_at": datetime.now(timezone.utc).isoformat(), **body}
            with open(out, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            return self._answer(201, {"id": record["id"], "reference": body.get("reference")})

        def _answer(self, status, payload):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(payload).encode())

        def log_message(self, *args):
            pass  # the requests hold phone numbers; they stay in the file, out of the log

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(args.out)).serve_forever()


if __name__ == "__main__":
    main()

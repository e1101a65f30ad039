"""Verifies sessiond's webhook deliveries with the independent Standard
Webhooks library: every delivery in DIR must verify, and the same delivery
with one byte of its body changed must not.

    python verify.py SECRET DIR

DIR holds N.json (the body) and N.headers.json (the headers) per delivery.
Prints "verified N" on success; exits non-zero on the first failure.
"""

import json
import pathlib
import sys

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

secret, directory = sys.argv[1], pathlib.Path(sys.argv[2])
hook = Webhook(secret)
count = 0
for body_file in sorted(directory.glob("*.body")):
    headers = json.loads(body_file.with_suffix(".headers").read_text())
    body = body_file.read_bytes()
    payload = hook.verify(body, headers)
    assert payload["type"] and payload["timestamp"] and payload["data"]["id"] == headers["webhook-id"], payload
    tampered = body.replace(b'"type"', b'"typE"', 1)
    try:
        hook.verify(tampered, headers)
    except WebhookVerificationError:
        pass
    else:
        sys.exit(f"a tampered body verified: {body_file}")
    count += 1
if count == 0:
    sys.exit("no deliveries to verify")
print(f"verified {count}")

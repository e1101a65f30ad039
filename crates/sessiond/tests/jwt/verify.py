"""Verifies a sessiond access token with PyJWT, from the JWKS alone.

    python verify.py JWKS_URL ISSUER AUDIENCE < token

The token comes on stdin (it is a credential: never on the command line).
On success prints {"header": ..., "claims": ...} as JSON on stdout and exits
0; on any failure prints "ErrorClass: message" on stderr and exits 1. Run by
crates/sessiond/tests/interop.rs.
"""

import json
import sys
import urllib.request

import jwt

# Every claim of API.md's access token: a token without one is refused.
CLAIMS = ["iss", "aud", "sub", "sid", "tid", "aal", "auth_time", "iat", "exp", "jti"]


def verify(jwks_url, issuer, audience, token):
    with urllib.request.urlopen(jwks_url, timeout=10) as response:
        jwks = json.load(response)
    kid = jwt.get_unverified_header(token).get("kid")
    found = [k for k in jwks.get("keys", []) if k.get("kid") == kid]
    if len(found) != 1:
        raise jwt.InvalidKeyError(f"{len(found)} keys with kid {kid!r} in the JWKS")
    key = jwt.PyJWK(found[0])
    verified = jwt.decode_complete(
        token,
        key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=issuer,
        options={"require": CLAIMS},
    )
    # RFC 9068: an access token says so in its (signed) header.
    if verified["header"].get("typ") != "at+jwt":
        raise jwt.InvalidTokenError(f"typ is {verified['header'].get('typ')!r}, not 'at+jwt'")
    return {"header": verified["header"], "claims": verified["payload"]}


def main():
    jwks_url, issuer, audience = sys.argv[1:]
    token = sys.stdin.read().strip()
    try:
        result = verify(jwks_url, issuer, audience, token)
    except jwt.PyJWTError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()

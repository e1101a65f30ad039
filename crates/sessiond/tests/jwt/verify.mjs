// Verifies a sessiond access token with jose, from the JWKS alone.
//
//     node verify.mjs JWKS_URL ISSUER AUDIENCE < token
//
// The token comes on stdin (it is a credential: never on the command line).
// On success prints {"header": ..., "claims": ...} as JSON on stdout and
// exits 0; on any failure prints "ERR_CODE: message" on stderr (with the
// claim at fault, if any) and exits 1. jose is found in the node_modules of
// $TEST_JWT_NODE_DIR (scripts/servers/jwt_libs.sh), else beside this file.
// Run by crates/sessiond/tests/interop.rs.

import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// Every claim of API.md's access token: a token without one is refused.
const CLAIMS = ["iss", "aud", "sub", "sid", "tid", "aal", "auth_time", "iat", "exp", "jti"];

const dir = process.env.TEST_JWT_NODE_DIR;
const { createRemoteJWKSet, jwtVerify } = dir
  ? await import(pathToFileURL(createRequire(join(dir, "package.json")).resolve("jose")).href)
  : await import("jose");

const [jwksUrl, issuer, audience] = process.argv.slice(2);
let token = "";
for await (const chunk of process.stdin) token += chunk;

try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 10000 });
  const { protectedHeader, payload } = await jwtVerify(token.trim(), jwks, {
    issuer,
    audience,
    algorithms: ["EdDSA"],
    typ: "at+jwt",
    requiredClaims: CLAIMS,
  });
  process.stdout.write(JSON.stringify({ header: protectedHeader, claims: payload }) + "\n");
} catch (e) {
  const claim = e.claim ? ` (claim ${e.claim})` : "";
  process.stderr.write(`${e.code ?? e.name}${claim}: ${e.message}\n`);
  process.exitCode = 1;
}

// A real OpenID Provider for the SSO tests: the certified `oidc-provider` package (pinned in
// tests/clients/package.json), on 127.0.0.1, with the clients and accounts the tests name.
//
//   node tests/idp/server.mjs <config.json>
//
// config.json: {"port", "issuer", "redirect_uris": [...], "post_logout_redirect_uris": [...],
//               "audience", "accounts": {"<login>": {claims...}}, "conform_id_token_claims"}
// Prints "READY <issuer>" on stdout once it listens.
//
// Test-only endpoints beside the provider (never part of an IdP):
//   POST /_admin/rotate        a new signing key (published first in the JWKS, signs from now)
//   POST /_admin/sign          {"header": {...}, "claims": {...}} signed with the current key,
//                              so tests can make tokens with wrong claims but a valid signature
//   POST /_admin/accounts      {"<login>": {claims...}} adds or replaces accounts (a person's
//                              groups change between two sign-ins)
//   POST /_admin/redirects     {"redirect_uris": [...], "post_logout_redirect_uris": [...]}
//                              for a console whose port is known only after the IdP started
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(path.join(here, '..', 'clients', 'package.json'));
const { default: Provider } = await import(require.resolve('oidc-provider'));
const jose = await import(require.resolve('jose'));

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const CONSOLE_CLIENT = { id: 'sluice-console', secret: 'console-secret' };
const WORKLOAD_CLIENT = { id: 'sluice-workload', secret: 'workload-secret' };

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = [newKey()];

function findAccount(ctx, id) {
  const claims = config.accounts[id];
  if (!claims) return undefined;
  return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
}

function build() {
  const provider = new Provider(config.issuer, {
    clients: [
      {
        client_id: CONSOLE_CLIENT.id,
        client_secret: CONSOLE_CLIENT.secret,
        redirect_uris: config.redirect_uris,
        post_logout_redirect_uris: config.post_logout_redirect_uris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: WORKLOAD_CLIENT.id,
        client_secret: WORKLOAD_CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    findAccount,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'api'],
    // false: scope claims go into the ID token too; true (some IdPs, e.g. Okta's org
    // server): the ID token has only `sub` and the rest comes from the userinfo endpoint.
    conformIdTokenClaims: Boolean(config.conform_id_token_claims),
    jwks: { keys },
    cookies: { keys: ['sluice-test-idp-cookie-key'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client) =>
          client.clientId === WORKLOAD_CLIENT.id ? config.audience : undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: config.audience,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

let provider = build();
let handle = provider.callback();

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

function reply(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function admin(req, res) {
  if (req.url === '/_admin/rotate' && req.method === 'POST') {
    keys = [newKey(), ...keys];
    provider = build(); // same issuer and in-memory store; the new key signs from now on
    handle = provider.callback();
    return reply(res, 200, { kid: keys[0].kid });
  }
  if (req.url === '/_admin/redirects' && req.method === 'POST') {
    const { redirect_uris: uris, post_logout_redirect_uris: after = [] } = await body(req);
    config.redirect_uris = uris;
    config.post_logout_redirect_uris = after;
    provider = build();
    handle = provider.callback();
    return reply(res, 200, { redirect_uris: uris });
  }
  if (req.url === '/_admin/accounts' && req.method === 'POST') {
    const accounts = await body(req);
    Object.assign(config.accounts, accounts); // read at each login: no rebuild needed
    return reply(res, 200, { accounts: Object.keys(accounts) });
  }
  if (req.url === '/_admin/sign' && req.method === 'POST') {
    const { header = {}, claims } = await body(req);
    const key = await jose.importJWK(keys[0], 'RS256');
    const token = await new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: keys[0].kid, ...header })
      .sign(key);
    return reply(res, 200, { token, public_jwk: { ...publicPart(keys[0]) } });
  }
  return reply(res, 404, { error: 'no such admin endpoint' });
}

function publicPart(jwk) {
  const { kty, n, e, kid, alg, use } = jwk;
  return { kty, n, e, kid, alg, use };
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/_admin/')) {
    admin(req, res).catch((err) => reply(res, 500, { error: String(err) }));
    return;
  }
  handle(req, res);
});

server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`READY ${config.issuer}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

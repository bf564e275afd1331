// An OAuth 2.0 authorization server for facade's end-to-end tests: oidc-provider (v9) with
// the RFC 8693 token-exchange grant registered through `registerGrantType`.
//
// Subject tokens are the façade's inbound JWTs: signed by the test's key, checked here
// against the test's JWKS (SUBJECT_JWKS_URI), issuer and audience, as a real authorization
// server checks tokens of a trusted issuer. The issued token is a JWT access token for the
// one resource server (BACKEND_RESOURCE), signed with this server's key (its JWKS is at
// /jwks), with `sub` = the subject's `sub`. Users in DENIED are refused (invalid_grant);
// users in SHORT_LIVED get tokens that expire after SHORT_TTL seconds. Clients: `facade`
// (client_secret_basic), `facade-post` (client_secret_post), `facade-pkjwt` (private_key_jwt
// with the key set in CLIENT_JWKS).
//
// For the tests only: GET /test/exchanges counts exchanges per subject. Listens on
// 127.0.0.1:IDP_PORT and prints "ready" once it does.
import http from 'node:http';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const port = Number(env('IDP_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const backend = env('BACKEND_RESOURCE');
const denied = new Set((process.env.DENIED || '').split(',').filter(Boolean));
const shortLived = new Set((process.env.SHORT_LIVED || '').split(',').filter(Boolean));
const shortTtl = Number(process.env.SHORT_TTL || '2');
const subjectKeys = jose.createRemoteJWKSet(new URL(env('SUBJECT_JWKS_URI')));
const exchanges = {};

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await jose.exportJWK(privateKey)), kid: 'idp-1', use: 'sig', alg: 'RS256' };

const client = (id, method, extra = { client_secret: env('CLIENT_SECRET') }) => ({
  client_id: id,
  grant_types: [GRANT],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: method,
  ...extra,
});

const provider = new Provider(issuer, {
  clients: [
    client('facade', 'client_secret_basic'),
    client('facade-post', 'client_secret_post'),
    // private_key_jwt: the façade's public key, from the test (CLIENT_JWKS, a JWK Set).
    client('facade-pkjwt', 'private_key_jwt', {
      jwks: JSON.parse(env('CLIENT_JWKS')), token_endpoint_auth_signing_alg: 'RS256',
    }),
  ],
  jwks: { keys: [signingKey] },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== backend) throw new errors.InvalidTarget('unknown resource');
        return { scope: 'orders.read', audience: backend, accessTokenFormat: 'jwt' };
      },
    },
  },
  ttl: {
    AccessToken: (ctx, token) => (shortLived.has(token.accountId) ? shortTtl : 300),
  },
});

async function tokenExchange(ctx) {
  const { params, client: caller } = ctx.oidc;
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  let subject;
  try {
    ({ payload: subject } = await jose.jwtVerify(params.subject_token, subjectKeys, {
      issuer: env('SUBJECT_ISSUER'), audience: env('SUBJECT_AUDIENCE'),
    }));
  } catch {
    throw new errors.InvalidGrant('subject_token is not valid');
  }
  if (denied.has(subject.sub)) {
    throw new errors.InvalidGrant('this subject may not access the resource');
  }
  const resource = params.resource || params.audience;
  if (resource !== backend) throw new errors.InvalidTarget('unknown resource');
  const info = await provider.Client.find(caller.clientId); // the authenticated client
  const token = new provider.AccessToken({
    accountId: subject.sub,
    client: info,
    gty: 'token_exchange',
    scope: (params.scope || '').split(' ').filter((s) => s === 'orders.read').join(' ') || undefined,
  });
  token.resourceServer = new provider.ResourceServer(resource, {
    scope: 'orders.read', audience: backend, accessTokenFormat: 'jwt',
  });
  const value = await token.save();
  exchanges[subject.sub] = (exchanges[subject.sub] || 0) + 1;
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}

provider.registerGrantType(GRANT, tokenExchange, [
  'audience', 'resource', 'scope', 'requested_token_type', 'subject_token',
  'subject_token_type', 'actor_token', 'actor_token_type',
], ['audience', 'resource']);

const callback = provider.callback();
http.createServer((req, res) => {
  if (req.url === '/test/exchanges') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(exchanges));
    return;
  }
  callback(req, res);
}).listen(port, '127.0.0.1', () => console.log('ready'));

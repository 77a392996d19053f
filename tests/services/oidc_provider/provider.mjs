// The agency's identity provider for the SSO tests: node-oidc-provider (OpenID Certified) on loopback.
// Accounts come from ACCOUNTS (JSON: id -> claims plus amr/acr of the login); the interaction logs in the
// account named by login_hint, as a person would after typing a password (and a second factor when amr
// says so). CLOCK_OFFSET_SECONDS shifts the provider's clock, which makes it issue expired ID tokens.
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
const offsetMs = Number(process.env.CLOCK_OFFSET_SECONDS || 0) * 1000;
if (offsetMs) {
  const realNow = Date.now;
  Date.now = () => realNow() + offsetMs;
}

function claimsOf(id) {
  const { amr, acr, ...claims } = accounts[id];
  return { sub: id, ...claims };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub', 'amr', 'acr', 'auth_time'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  cookies: { keys: ['keiyaku-portal-test-only'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // Cookies outlive a shifted clock (CLOCK_OFFSET_SECONDS up to -3 h); ID tokens last 10 minutes.
  ttl: { AuthorizationCode: 60, IdToken: 600, AccessToken: 600, Session: 10800 * 2, Interaction: 10800 * 2, Grant: 10800 * 2 },
  findAccount: async (ctx, id) => (accounts[id] ? { accountId: id, claims: async () => claimsOf(id) } : undefined),
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

const server = http.createServer(async (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    try {
      const details = await provider.interactionDetails(req, res);
      const id = details.params.login_hint;
      if (!accounts[id]) {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'unknown account' });
        return;
      }
      const { amr, acr } = accounts[id];
      await provider.interactionFinished(req, res, { login: { accountId: id, amr, acr } }, { mergeWithLastSubmission: false });
    } catch (error) {
      res.statusCode = 500;
      res.end(String(error));
    }
    return;
  }
  provider.callback()(req, res);
});
server.listen(port, '127.0.0.1', () => console.log(`ready ${issuer}`));

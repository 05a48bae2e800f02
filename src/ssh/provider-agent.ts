/**
 * The gate's upstream identity as an ssh2 agent (`BaseAgent`): ssh2's Client asks it for identities and
 * signatures through `authHandler: [{ type: 'agent', agent }]`, and every signature is made by the
 * provider, so the key can live in a PKCS#11 token without ssh2 ever holding it (docs/OPERATIONS.md,
 * "Upstream authentication").
 *
 * Signatures, in the form ssh2 expects from an agent (the signature body; ssh2 adds the algorithm name):
 * - ECDSA P-256/P-384: `mpint r || mpint s` (RFC 5656 §3.1.2), hash by curve;
 * - RSA: PKCS#1 v1.5 with SHA-256 or SHA-512, as the request's rsa-sha2-256/512 asks (RFC 8332). A SHA-1
 *   (`ssh-rsa`) request is refused, so a target that knows only ssh-rsa cannot be logged in to.
 */
import ssh2, {
  type ParsedKey,
  type SignCallback,
  type SigningRequestOptions,
  type IdentityCallback,
} from 'ssh2';
import { hashForCurve, type CryptoProvider, type PrivateKey } from '../crypto/index.js';
import { ecdsaSignatureBody } from './wire.js';

type AgentKey = string | ParsedKey;

export class ProviderAgent extends ssh2.BaseAgent<AgentKey> {
  readonly #provider: CryptoProvider;
  readonly #key: PrivateKey;
  readonly #line: string;
  readonly #blob: Uint8Array;

  constructor(provider: CryptoProvider, key: PrivateKey) {
    super();
    if (key.algorithm.type === 'ed25519' && provider.policy.fips) {
      throw new Error('an Ed25519 upstream key cannot be used in FIPS mode');
    }
    this.#provider = provider;
    this.#key = key;
    this.#line = key.publicKey.openssh('sealgate-upstream');
    this.#blob = new Uint8Array(Buffer.from(this.#line.split(' ')[1] ?? '', 'base64'));
  }

  /** The OpenSSH public key line, for a target's authorized_keys. */
  get publicKeyLine(): string {
    return this.#line;
  }

  getIdentities(cb: IdentityCallback<AgentKey>): void {
    cb(null, [this.#line]);
  }

  sign(
    pubKey: AgentKey,
    data: Buffer,
    options: SigningRequestOptions | SignCallback,
    cb?: SignCallback,
  ): void {
    const done = (typeof options === 'function' ? options : cb) as SignCallback;
    const opts = typeof options === 'function' ? {} : (options ?? {});
    const offered = typeof pubKey === 'string' ? undefined : pubKey.getPublicSSH();
    if (offered && !this.#provider.equal(new Uint8Array(offered), this.#blob)) {
      done(new Error('the agent holds no such key'));
      return;
    }
    this.signWith(data, opts.hash).then(
      (signature) => done(null, signature),
      (err: Error) => done(err),
    );
  }

  private async signWith(data: Uint8Array, hash: SigningRequestOptions['hash']): Promise<Buffer> {
    const alg = this.#key.algorithm;
    switch (alg.type) {
      case 'ec': {
        const p1363 = await this.#provider.sign(this.#key, data, {
          scheme: 'ecdsa',
          hash: hashForCurve(alg.curve),
          encoding: 'p1363',
        });
        return ecdsaSignatureBody(p1363);
      }
      case 'rsa': {
        if (hash !== 'sha256' && hash !== 'sha512') {
          throw new Error('refusing an ssh-rsa (SHA-1) signature; the target must accept rsa-sha2-256/512');
        }
        return Buffer.from(await this.#provider.sign(this.#key, data, { scheme: 'rsa-pkcs1v15', hash }));
      }
      case 'ed25519':
        return Buffer.from(await this.#provider.sign(this.#key, data, { scheme: 'ed25519' }));
    }
  }
}

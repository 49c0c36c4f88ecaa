import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** PEM files the server reads from its data directory; `ca` is what clients verify the server with. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

const YEAR = 365 * 24 * 3600 * 1000;

/** RSA keys come from Node's native crypto (forge's pure-JS keygen takes seconds); forge only encodes and signs. */
function rsaKey(): { pem: string; key: forge.pki.rsa.PrivateKey; pub: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(pem);
  return { pem, key, pub: forge.pki.setRsaPublicKey(key.n, key.e) };
}

function certificate(subject: string, pub: forge.pki.rsa.PublicKey, extensions: object[]): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = pub;
  // Random, and positive: a leading 01 byte keeps the top bit clear.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  // An hour back for clock skew; ten years ahead: the layer is cached and reused.
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 10 * YEAR);
  cert.setSubject([{ name: 'commonName', value: subject }]);
  cert.setExtensions(extensions);
  return cert;
}

/**
 * A throwaway CA and a server certificate it signed for localhost,
 * 127.0.0.1 and ::1, so clients can use sslmode=verify-full. Two certs, not
 * one self-signed leaf: verifiers differ on accepting a leaf as its own root.
 */
export function selfSignedTls(): TlsFiles {
  const ca = rsaKey();
  const caCert = certificate('sandbox-run test CA', ca.pub, [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.setIssuer(caCert.subject.attributes);
  caCert.sign(ca.key, forge.md.sha256.create());

  const server = rsaKey();
  const cert = certificate('localhost', server.pub, [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.setIssuer(caCert.subject.attributes);
  cert.sign(ca.key, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: server.pem, ca: forge.pki.certificateToPem(caCert) };
}

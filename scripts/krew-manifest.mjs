// `npm run krew -- lxcfs-webhook-<version>.tgz [--uri URL]`: the krew plugin manifest (kubectl krew
// install --manifest=lxcfs.yaml --archive=lxcfs-webhook-<version>.tgz, or a krew index entry) for the
// release tarball `npm pack` makes. The tarball carries its dependencies (bundleDependencies), so krew
// unpacks a program that runs as it is; krew links kubectl-lxcfs to its entry, which is executable in the
// archive. Printed on stdout. The uri defaults to the GitHub release asset of this version.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { stringify } from 'yaml';

const [tarball, ...rest] = process.argv.slice(2);
if (!tarball) {
  console.error('usage: node scripts/krew-manifest.mjs lxcfs-webhook-<version>.tgz [--uri URL]');
  process.exit(2);
}
const root = new URL('..', import.meta.url).pathname;
const { version, bin } = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
const uriAt = rest.indexOf('--uri');
const uri =
  uriAt >= 0
    ? rest[uriAt + 1]
    : `https://github.com/lxcfs-webhook/lxcfs-webhook/releases/download/v${version}/${basename(tarball)}`;
const sha256 = createHash('sha256').update(readFileSync(tarball)).digest('hex');

const platform = (arch) => ({
  selector: { matchLabels: { os: 'linux', arch } },
  uri,
  sha256,
  // npm pack puts everything under package/; the plugin's directory is its contents.
  files: [{ from: 'package/*', to: '.' }],
  bin: bin['kubectl-lxcfs'],
});

const manifest = {
  apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
  kind: 'Plugin',
  metadata: { name: 'lxcfs' },
  spec: {
    version: `v${version}`,
    homepage: 'https://github.com/lxcfs-webhook/lxcfs-webhook',
    shortDescription: 'LXCFS for pods: inject, audit and check lxcfs mounts',
    description: [
      "The lxcfs-webhook CLI as a kubectl plugin: inject the webhook's lxcfs mounts into manifests",
      '(kubectl lxcfs inject -f app.yaml), list running pods a webhook outage left without them',
      '(kubectl get namespaces,pods,replicasets -A -o json | kubectl lxcfs audit), make the',
      "webhook's certificates (kubectl lxcfs certs --out DIR), and more: kubectl lxcfs --help.",
    ].join('\n'),
    caveats:
      'The plugin is a Node.js program: it needs Node.js 20 or later as `node` on your PATH.',
    platforms: [platform('amd64'), platform('arm64')],
  },
};
process.stdout.write(stringify(manifest));

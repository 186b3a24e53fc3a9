// The chart under Helm 3 and Helm 4 as modelled from their source (test/helm), its hook Jobs running the
// real `lxcfs-webhook certs` against the cluster model's API with the chart's RBAC: install as the README
// says, uninstall without losing anything and without leaving a node dirty, renders that never change,
// certificates that stay put across upgrades and mode switches, renewal, and a Secret the chart did
// not make. chart-0.1.0.test.ts runs the same scenarios on chart 0.1.0, where they fail.
import { after, describe, it } from 'node:test';
import type { HelmVersion } from '../helm/helm.js';
import { chartDir } from './render.js';
import * as scenario from './scenarios.js';

const worlds: scenario.World[] = [];
after(async () => {
  for (const w of worlds) await w.runner.close();
});

for (const version of [3, 4] as HelmVersion[]) {
  describe(`chart lifecycle, Helm ${version}`, () => {
    const run = (name: string, fn: (w: scenario.World) => unknown): void => {
      it(name, async () => {
        const w = scenario.world(version, chartDir);
        worlds.push(w);
        await fn(w);
      });
    };
    run(
      "install as the README says: namespace made and labelled first, every object Helm's, the webhook trusted",
      scenario.installAsReadme,
    );
    run('install with --create-namespace', scenario.installCreatingNamespace);
    run(
      "uninstall: stopped until the nodes are cleaned, then every release object goes and the namespace and the user's Secret stay",
      scenario.uninstallKeepsWhatUsersMade,
    );
    run(
      'helm uninstall --no-hooks skips the node clean-up check and still removes the whole release',
      scenario.uninstallWithoutCleaning,
    );
    run(
      'helm template renders the same bytes every time, in every certificate mode',
      scenario.templateIsStable,
    );
    run(
      'self-signed: made once by the Job, the same after upgrades, trusted throughout',
      scenario.selfSignedStaysPut,
    );
    run('self-signed never takes over a Secret it did not make', scenario.neverAdoptsForeignSecret);
    run(
      'self-signed: renewed before expiry by an upgrade and by the CronJob, with the same CA',
      scenario.renewsBeforeExpiry,
    );
    run(
      'upgrades across certificate modes keep the webhook trusted and lose nothing',
      scenario.modeSwitches,
    );
    run(
      'values that cannot work are refused before anything changes',
      scenario.refusesValuesThatCannotWork,
    );
  });
}

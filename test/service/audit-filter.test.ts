import { expect, it } from 'vitest';
import { listAudit, recordAudit } from '../../src/service/audit.js';
import { describeEachBackend, tempDir } from '../helpers/backends.js';
import { freshStore } from '../helpers/store.js';

describeEachBackend('audit --action', (backend) => {
  const dir = tempDir();

  it('selects by a literal, case-sensitive prefix: % and _ are characters, not wildcards', async () => {
    const { store } = await freshStore(backend, dir);
    for (const action of [
      'identity.add',
      'identity.add-scope',
      'identityXadd',
      'identity_add',
      'Identity.add',
    ]) {
      await recordAudit(store, { actor: 'ops', action, outcome: 'ok' });
    }
    const actions = async (prefix: string) =>
      (await listAudit(store, { action: prefix })).map((entry) => entry.action);

    expect(await actions('identity.add')).toEqual(['identity.add', 'identity.add-scope']);
    expect(await actions('identity_')).toEqual(['identity_add']);
    expect(await actions('Identity')).toEqual(['Identity.add']);
    await expect(listAudit(store, { action: '%' })).rejects.toThrow(/matches no audited action/);
  });
});

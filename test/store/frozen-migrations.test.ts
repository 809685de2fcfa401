import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrationChecksum } from '../../src/store/migrator.js';
import { migrations } from '../../src/store/migrations/index.js';

const migrationsDir = path.resolve(import.meta.dirname, '../../src/store/migrations');

describe('released migrations are frozen', () => {
  // These are the checksums databases in the field recorded when they applied each migration; a
  // different value here means those databases would now report drift and refuse to start.
  it('keep the checksums they were released with', async () => {
    const checksums = Object.fromEntries(
      await Promise.all(migrations.map(async (m) => [m.id, await migrationChecksum(m)] as const)),
    );
    expect(checksums).toEqual({
      1: '053f3fa9e70a4d1dfa5b401b093fce129a8922cb7197ea5f3032fde34a20ab6b',
      2: 'ce4d10943473111063ff1cbe294a4a924f4bf59ab2b671088a8a251d4eaa3b1a',
      3: '861d87bcfd22de2c19c6d2575441aa9131e4c46b92c09665b9a26f4b942ac354',
      4: '535848c9038ba91bb831c662ac831dc1adcde72ce3501fee8f2fd2a713e1b6a3',
      5: '17156a9c7ab5eb7bf197488dace5882772a066403f31adb22aed498d6c5f4e37',
      6: '18474b3a970fa0cb4de802c045337bf10601488bbe7f62fcaf5201b672ac36d6',
      7: '447755cf53d216ff529a92ee43b5ddda6571d0468be7c0b4f1af66c15f4a8d91',
      8: 'f03cd566a7410e465e1889565dd4a304a15956c934ebdddf33266b6aa324441f',
      9: '3db3e2b91291d2fccb8bf5094a5f1f56dc200011caf82dc84202bb6adc71dbae',
      10: '17e6fa56caaec54fdb06ad1267bedb1d945aa15ef318807000aa1762877e43ec',
      11: 'a37ded3510790ca1f1fd52f016a759d8e336913c2753efd27fb727f541159e87',
      12: 'e172e56fe3fa967e6dfe613b3014a3c03e42dd4740958804252b034b1a718ec6',
    });
  });

  it('import nothing that may change later: only kysely and their own folder', () => {
    const files = readdirSync(migrationsDir).filter((f) => /^\d{4}-.*\.ts$/.test(f));
    expect(files.length).toBe(migrations.length);
    for (const file of files) {
      const source = readFileSync(path.join(migrationsDir, file), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const specifier of imports) {
        expect(specifier === 'kysely' || specifier?.startsWith('./'), `${file} imports ${specifier}`).toBe(
          true,
        );
      }
    }
  });
});

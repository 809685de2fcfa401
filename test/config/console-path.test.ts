import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve-config.js';

describe('ATHANOR_CONSOLE_PATH', () => {
  it('defaults to /console, takes another path, drops a trailing slash, and turns off with off', () => {
    expect(resolveConfig({}, {}).consolePath).toBe('/console');
    expect(resolveConfig({}, { ATHANOR_CONSOLE_PATH: '/ops/console/' }).consolePath).toBe('/ops/console');
    expect(resolveConfig({}, { ATHANOR_CONSOLE_PATH: 'off' }).consolePath).toBeUndefined();
    expect(resolveConfig({}, { ATHANOR_CONSOLE_PATH: 'OFF' }).consolePath).toBeUndefined();
  });

  it('refuses a path that is not one, naming the variable', () => {
    for (const bad of ['console', '/', '/a b', '/../x', '//evil.example', '/x?y']) {
      expect(() => resolveConfig({}, { ATHANOR_CONSOLE_PATH: bad }), bad).toThrow(
        /ATHANOR_CONSOLE_PATH \(consolePath\) must be a path like \/console, or off/,
      );
    }
  });
});

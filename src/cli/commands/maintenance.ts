import { Command } from 'commander';
import { getMaintenance, setMaintenance } from '../../ops/maintenance.js';
import { osActor } from '../../service/audit.js';
import { wantsJson, withStore } from '../context.js';
import { printJson, printLine } from '../output.js';

export function maintenanceCommand(): Command {
  const command = new Command('maintenance').description(
    'maintenance mode: writes and claims get 503 with Retry-After; reads and results of held leases keep working',
  );
  command
    .command('on')
    .description('switch maintenance mode on (every server follows within about a second)')
    .option('--reason <text>', 'shown to API callers and in status')
    .action(async (options: { reason?: string }, cmd: Command) => {
      await withStore(cmd, (store) => setMaintenance(store, osActor(), true, options.reason));
      const state = await withStore(cmd, (store) => getMaintenance(store));
      if (wantsJson(cmd)) printJson(state);
      else printLine(`maintenance mode is on: ${state.reason}`);
    });
  command
    .command('off')
    .description('switch maintenance mode off')
    .action(async (_options: unknown, cmd: Command) => {
      await withStore(cmd, (store) => setMaintenance(store, osActor(), false));
      if (wantsJson(cmd)) printJson({ on: false });
      else printLine('maintenance mode is off');
    });
  command
    .command('status')
    .description('show maintenance mode (exit 0 either way)')
    .action(async (_options: unknown, cmd: Command) => {
      const state = await withStore(cmd, (store) => getMaintenance(store));
      if (wantsJson(cmd)) printJson(state);
      else printLine(state.on ? `on since ${state.since} by ${state.by}: ${state.reason}` : 'off');
    });
  return command;
}

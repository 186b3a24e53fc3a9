// Listening on a port, with an error that says what is wrong and what to change when it fails.
import type { AddressInfo, Server } from 'node:net';
import { configError } from '../errors.js';

export interface ListenOptions {
  port: number;
  /** All interfaces when absent. */
  address?: string;
  /** How the user sets the port and address, named in the error (`--health-port`, `--address`). */
  portSetting: string;
  addressSetting?: string;
}

/** Resolves with the bound port (which differs from the asked one when that was 0). */
export function listen(server: Server, options: ListenOptions): Promise<number> {
  const { port, address, portSetting, addressSetting = '--address' } = options;
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const problem = err.code === 'EADDRINUSE' ? 'is in use by another process'
        : err.code === 'EACCES' ? 'needs privileges this process does not have'
        : err.code === 'EADDRNOTAVAIL' ? 'is on an address this machine does not have'
        : `cannot be listened on (${err.code ?? err.message})`;
      const where = address ? ` on ${addressSetting} ${address}` : '';
      reject(configError(`${portSetting} ${port}${where} ${problem}; choose another ${portSetting}${address ? ` or ${addressSetting}` : ''}`));
    };
    server.once('error', onError);
    server.listen(port, address, () => {
      server.removeListener('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes a server and every connection it still has. */
export function closeNow(server: Server & { closeAllConnections?(): void }): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

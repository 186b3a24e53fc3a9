// Listening on a port, with an error that says what is wrong and what to change when it fails. The
// error names the port by what it is (`HTTPS port`) and carries the caller's setting name (`port`),
// which the CLI turns into its flag.
import type { AddressInfo, Server } from 'node:net';
import { configError } from '../errors.js';

export interface ListenOptions {
  port: number;
  /** All interfaces when absent. */
  address?: string;
  /** What the port is for, in words: `HTTPS port`, `health port`. */
  what: string;
  /** The caller's name for the setting, put on the error (`port`, `healthPort`). */
  setting: string;
}

/** Resolves with the bound port (which differs from the asked one when that was 0). */
export function listen(
  server: Server,
  { port, address, what, setting }: ListenOptions,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const problem =
        err.code === 'EADDRINUSE'
          ? 'is in use by another process'
          : err.code === 'EACCES'
            ? 'needs privileges this process does not have'
            : err.code === 'EADDRNOTAVAIL'
              ? 'is on an address this machine does not have'
              : `cannot be listened on (${err.code ?? err.message})`;
      reject(
        configError(
          `${what} ${port}${address ? ` on address ${address}` : ''} ${problem}; choose another port or address`,
          setting,
        ),
      );
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

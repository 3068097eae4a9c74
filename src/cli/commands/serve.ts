// `meshca serve`: run the CA until SIGINT/SIGTERM, then shut down gracefully and exit 0. A failure to
// load or bind stops it before it serves anything, with a non-zero exit.
import { createLogger } from '../../observability/index.ts';
import { serveConfigFrom, SERVE_OPTIONS, startCaServer } from '../../server/index.ts';
import { defineCommand } from '../command.ts';
import { SIGNER_PIN_ENV } from '../custody.ts';

export const serveCommand = defineCommand({
  path: ['serve'],
  usage: 'meshca serve [--keys DIR] [--listen 0.0.0.0:15012] [--http-listen 0.0.0.0:15014] [--db sqlite:<keys>/ledger.db] [--new-ledger] …',
  options: SERVE_OPTIONS,
  async run(v, ctx) {
    const config = serveConfigFrom(v);
    const log = createLogger(config.logLevel);
    let server;
    try {
      const signerPin = ctx.env[SIGNER_PIN_ENV];
      server = await startCaServer(config, { clock: ctx.clock, log, signal: ctx.signal, ...(signerPin !== undefined ? { signerPin } : {}) });
    } catch (err) {
      // The first SIGINT/SIGTERM is honoured while starting too: what started is stopped, exit 0.
      if (!ctx.signal.aborted) throw err;
      log.info('stopped before serving');
      log.flush();
      return 0;
    }
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await server.close();
    log.flush();
    return 0;
  },
});

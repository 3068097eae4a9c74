// `meshca serve`: run the CA until SIGINT/SIGTERM, then shut down gracefully and exit 0.
import { createLogger } from '../../observability/index.ts';
import { serveConfigFrom, SERVE_OPTIONS, startCaServer } from '../../server/index.ts';
import { defineCommand } from '../command.ts';

export const serveCommand = defineCommand({
  path: ['serve'],
  usage: 'meshca serve [--keys DIR] [--listen 0.0.0.0:15012] [--http-listen 0.0.0.0:15014] [--db sqlite:data/meshca.db] …',
  options: SERVE_OPTIONS,
  async run(v, ctx) {
    const config = serveConfigFrom(v);
    const log = createLogger(config.logLevel);
    const server = await startCaServer(config, { clock: ctx.clock, log });
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await server.close();
    log.flush();
    return 0;
  },
});

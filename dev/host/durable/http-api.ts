/**
 * The Durable extension's HTTP API, as durable-functions' `DurableClient` calls it through `rpcBaseUrl`
 * (`orchestrators/{name}[/{id}]`, `instances/{id}[/terminate|/raiseEvent/{event}|/suspend|/resume]`), and the
 * public management URLs under `/runtime/webhooks/durabletask/` that `createCheckStatusResponse` hands out.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../http-trigger.js';
import { DurableError, type DurableRuntime } from './runtime.js';

export const TASK_HUB = 'DevHostHub';
export const WEBHOOK_PATH = '/runtime/webhooks/durabletask/';

/** The durable client binding's data, as the extension sends it to the worker. */
export function clientBindingData(options: { rpcBaseUrl: string; publicBaseUrl: string; functionKey: string }) {
  const hook = `${options.publicBaseUrl.replace(/\/+$/, '')}${WEBHOOK_PATH}`;
  const query = `taskHub=${TASK_HUB}&connection=Storage&code=${encodeURIComponent(options.functionKey)}`;
  const instance = `${hook}instances/INSTANCEID`;
  return {
    taskHubName: TASK_HUB,
    creationUrls: {
      createNewInstancePostUri: `${hook}orchestrators/{functionName}[/{instanceId}]?code=${encodeURIComponent(options.functionKey)}`,
      createAndWaitOnNewInstancePostUri: `${hook}orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=${encodeURIComponent(options.functionKey)}`,
    },
    managementUrls: {
      id: 'INSTANCEID',
      statusQueryGetUri: `${instance}?${query}`,
      sendEventPostUri: `${instance}/raiseEvent/{eventName}?${query}`,
      terminatePostUri: `${instance}/terminate?reason={text}&${query}`,
      rewindPostUri: `${instance}/rewind?reason={text}&${query}`,
      purgeHistoryDeleteUri: `${instance}?${query}`,
      restartPostUri: `${instance}/restart?${query}`,
      suspendPostUri: `${instance}/suspend?reason={text}&${query}`,
      resumePostUri: `${instance}/resume?reason={text}&${query}`,
    },
    baseUrl: hook.replace(/\/$/, ''),
    requiredQueryStringParameters: query,
    rpcBaseUrl: options.rpcBaseUrl,
    httpBaseUrl: '',
    maxGrpcMessageSizeInBytes: 0,
    grpcHttpClientTimeout: '00:01:40',
  };
}

/**
 * Answers one Durable API request whose path (after the API's base) is `path`; false when it is not one.
 * `links` builds the management payload returned by a start.
 */
export async function handleDurableApi(
  runtime: DurableRuntime,
  method: string,
  path: string,
  url: URL,
  body: Buffer,
  res: ServerResponse,
  links: (instanceId: string) => Record<string, string>,
): Promise<boolean> {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const text = body.length ? body.toString('utf8') : undefined;
  try {
    if (parts[0] === 'orchestrators' && parts.length >= 2 && method === 'POST') {
      const instanceId = parts[2] ?? randomUUID().replace(/-/g, '');
      runtime.startNew(parts[1], instanceId, text === '' ? undefined : text);
      sendJson(res, 202, { id: instanceId, ...links(instanceId) });
      return true;
    }
    if (parts[0] !== 'instances') return false;
    const filter = {
      runtimeStatus: url.searchParams.get('runtimeStatus')?.split(',').filter(Boolean),
      createdTimeFrom: dateParam(url, 'createdTimeFrom'),
      createdTimeTo: dateParam(url, 'createdTimeTo'),
    };
    if (parts.length === 1) {
      if (method === 'GET') sendJson(res, 200, runtime.list(filter));
      else if (method === 'DELETE') sendJson(res, 200, { instancesDeleted: runtime.purgeAll(filter) });
      else return false;
      return true;
    }
    const instanceId = parts[1];
    if (parts.length === 2 && method === 'GET') {
      const status = runtime.status(instanceId, {
        showHistory: url.searchParams.get('showHistory') === 'true',
        showInput: url.searchParams.get('showInput') !== 'false',
      });
      const running = status.runtimeStatus === 'Running' || status.runtimeStatus === 'Pending';
      sendJson(res, running ? 202 : 200, status);
      return true;
    }
    if (parts.length === 2 && method === 'DELETE') {
      if (!runtime.purge(instanceId)) throw new DurableError(404, `No instance with ID '${instanceId}' found.`);
      sendJson(res, 200, { instancesDeleted: 1 });
      return true;
    }
    const operation = parts[2];
    if (method !== 'POST') return false;
    const reason = url.searchParams.get('reason') ?? '';
    if (operation === 'terminate') runtime.terminate(instanceId, reason);
    else if (operation === 'raiseEvent' && parts[3]) runtime.raiseEvent(instanceId, parts[3], text);
    else if (operation === 'suspend') runtime.suspend(instanceId);
    else if (operation === 'resume') runtime.resume(instanceId);
    else if (operation === 'rewind' || operation === 'restart') {
      throw new DurableError(501, `${operation} is not supported by the development host.`);
    } else return false;
    res.statusCode = 202;
    res.end();
    return true;
  } catch (err) {
    if (err instanceof DurableError) {
      sendJson(res, err.status, { message: err.message });
      return true;
    }
    throw err;
  }
}

function dateParam(url: URL, name: string): Date | undefined {
  const value = url.searchParams.get(name);
  return value ? new Date(value) : undefined;
}

/** True when the request came over the loopback interface (the RPC endpoint is local-only, like the extension's). */
export function isLoopback(req: IncomingMessage): boolean {
  const address = req.socket.remoteAddress ?? '';
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/**
 * `keyva node add` / `keyva node remove <id>` against a local cluster (`keyva dev --nodes N`):
 * the supervisor starts a node (the control loop moves its share of the partitions onto it) or
 * starts draining one (refused up front when unsafe, with the reason; the loop removes it once
 * the node itself confirms it holds no replica). Follow the progress with `keyva status --watch`.
 */
import { type ControlOptions, controlRequest, requireControl } from '../dev-control.ts';
import { printJson, style } from '../output.ts';

export interface NodeCmdOptions extends ControlOptions {
  readonly json: boolean;
}

export async function cmdNodeAdd(o: NodeCmdOptions): Promise<number> {
  const res = await controlRequest<{ id: string; grpc: string; http: string }>(requireControl(o), 'POST', '/v1/nodes');
  if (o.json) printJson(res);
  else
    process.stdout.write(
      `${style.green('added')} ${res.id} (gRPC ${res.grpc}, REST ${res.http}); the control loop is moving its share of the partitions onto it: keyva status --watch\n`,
    );
  return 0;
}

export async function cmdNodeRemove(o: NodeCmdOptions, id: string): Promise<number> {
  const res = await controlRequest<{ id: string; state: string; changed: boolean }>(requireControl(o), 'DELETE', `/v1/nodes/${encodeURIComponent(id)}`);
  if (o.json) printJson(res);
  else if (!res.changed) process.stdout.write(`${res.id} is already ${res.state}\n`);
  else
    process.stdout.write(
      `${style.yellow('draining')} ${res.id}: its replicas move to the other nodes; it is removed and stopped once it confirms it holds none: keyva status --watch\n`,
    );
  return 0;
}

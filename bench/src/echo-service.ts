/**
 * The grpc-js baseline: an echo service with raw-Buffer (de)serialisers, unary and bidi
 * streaming, so a KeyVa figure can be read against the best this transport does here.
 */
import * as grpc from '@grpc/grpc-js';

const id = (b: Buffer) => b;
export const echoService = {
  Echo: {
    path: '/keyva.bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  },
  Stream: {
    path: '/keyva.bench.Echo/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  },
} as const;

export function startEchoServer(host = '127.0.0.1'): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(echoService as unknown as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (b: Buffer) => call.write(b));
      call.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port }))),
  );
}

export interface EchoClient {
  unary(payload: Buffer): Promise<Buffer>;
  /** Pipelined over one bidi stream; answers come back in order. */
  streamed(payload: Buffer): Promise<Buffer>;
  close(): void;
}

export function echoClient(address: string): EchoClient {
  const Ctor = grpc.makeGenericClientConstructor(echoService as unknown as grpc.ServiceDefinition, 'Echo');
  const c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as {
    Echo(b: Buffer, cb: (e: grpc.ServiceError | null, r: Buffer) => void): void;
    Stream(): grpc.ClientDuplexStream<Buffer, Buffer>;
    close(): void;
  };
  const pending: ((b: Buffer) => void)[] = [];
  let stream: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  const ensure = () => {
    if (!stream) {
      stream = c.Stream();
      stream.on('data', (b: Buffer) => pending.shift()?.(b));
      stream.on('error', () => undefined);
    }
    return stream;
  };
  return {
    unary: (payload) => new Promise((resolve, reject) => c.Echo(payload, (e, r) => (e ? reject(e) : resolve(r)))),
    streamed: (payload) =>
      new Promise((resolve) => {
        pending.push(resolve);
        ensure().write(payload);
      }),
    close: () => {
      stream?.end();
      c.close();
    },
  };
}

if (import.meta.main) {
  const { port } = await startEchoServer();
  process.stdout.write(`${JSON.stringify({ event: 'ready', port })}\n`);
}

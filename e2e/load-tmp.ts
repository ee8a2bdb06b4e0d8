import { KeyVa } from '@keyva/client';

const kv = await KeyVa.connect({ endpoints: ['127.0.0.1:17379'], useStream: process.argv[2] === 'stream' });
for (let i = 0; i < 1000; i++) await kv.put(`k${i}`, 'v'.repeat(100));
let n = 0;
const end = Date.now() + 8000;
await Promise.all(
  Array.from({ length: 64 }, async (_, w) => {
    for (let i = 0; Date.now() < end; i++) {
      await kv.get(`k${(i * 64 + w) % 1000}`);
      n++;
    }
  }),
);
console.log('get/s', Math.round(n / 8));
await kv.close();

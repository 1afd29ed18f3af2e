import { startPrivateCluster } from '../bench/snapshot-clone/private-cluster.ts';
import { findPgBinDirs } from '../bench/snapshot-clone/installations.ts';
import { buildDatabase } from '../bench/snapshot-clone/build.ts';
import { connectPg } from '../src/adapters/local/pg-connection.ts';
async function main() {
const bin = (await findPgBinDirs()).find((d) => d.hasServer)!;
const cl = await startPrivateCluster(bin, console.log);
try {
  await buildDatabase(cl.url, 'src', 1024 * 1024 * 1024);
  const a = await connectPg(cl.url), b = await connectPg(cl.url);
  const drop = async () => { for (const d of ['x', 'y']) await a.query(`drop database if exists ${d}`); };
  for (let r = 0; r < 4; r++) {
    await drop(); await a.query('checkpoint');
    let t = performance.now();
    await a.query('create database x template src strategy file_copy');
    await a.query('create database y template x strategy file_copy');
    console.log('seq', Math.round(performance.now() - t));
    await drop(); await a.query('checkpoint');
    t = performance.now();
    await Promise.all([a.query('create database x template src strategy file_copy'), b.query('create database y template src strategy file_copy')]);
    console.log('par', Math.round(performance.now() - t));
    await drop(); await a.query('checkpoint');
    t = performance.now();
    await a.query('create database x template src strategy file_copy');
    console.log('one', Math.round(performance.now() - t));
  }
  await drop(); await a.end(); await b.end();
} finally { await cl.stop(); }

}
void main();

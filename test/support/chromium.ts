import { spawn } from 'node:child_process';
import { constants, createReadStream, createWriteStream, existsSync } from 'node:fs';
import { access, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { chromium, type BrowserContext } from 'playwright-core';
import { isAlive } from './process-alive.ts';

/**
 * The Chromium the browser tests drive, chosen in this order:
 *  1. `SAFESHIFT_CHROMIUM=/path/to/chromium`: that binary (it must exist);
 *     `SAFESHIFT_CHROMIUM=bundled`: the one from npm (below), even where a system Chromium is installed;
 *  2. Debian's `/usr/bin/chromium`, when installed;
 *  3. else the one from npm: the devDependency `@sparticuz/chromium` ships a headless Chromium for
 *     x64 Linux inside the package (bin/*.br). It is unpacked from those files, nothing downloaded,
 *     once into node_modules/.cache/safeshift-chromium-<version>/ (a few seconds), together with the
 *     NSS libraries and fonts the package ships, so it needs nothing from the OS beyond glibc and tar.
 * No browser found is an error, never a skipped test.
 */
export const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/** The same flags for every Chromium: headless, no sandbox (CI runs as root), nothing reaching out. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface ChromiumToLaunch {
  /** Which Chromium this is, for messages. */
  readonly description: string;
  readonly executablePath: string;
  /** Set for the browser process only, on top of this process's environment. */
  readonly env: Readonly<Record<string, string>>;
}

const REPO = path.resolve(import.meta.dirname, '../..');
const CACHE = path.join(REPO, 'node_modules', '.cache');
const PREFIX = 'safeshift-chromium-';
const READY = 'unpacked';
const CHOOSING = 'SAFESHIFT_CHROMIUM is unset (then /usr/bin/chromium, else the one from npm), "bundled", or a path to a Chromium binary';

export async function findChromium(): Promise<ChromiumToLaunch> {
  const wanted = process.env.SAFESHIFT_CHROMIUM?.trim();
  if (wanted === 'bundled') return bundledChromium();
  if (wanted) {
    try {
      await access(wanted, constants.X_OK);
    } catch {
      throw new Error(`SAFESHIFT_CHROMIUM=${wanted} is not an executable file. ${CHOOSING}.`);
    }
    return { description: `the Chromium at ${wanted} (SAFESHIFT_CHROMIUM)`, executablePath: wanted, env: {} };
  }
  if (existsSync(SYSTEM_CHROMIUM)) return { description: `the system Chromium at ${SYSTEM_CHROMIUM}`, executablePath: SYSTEM_CHROMIUM, env: {} };
  return bundledChromium();
}

/** Launches the chosen Chromium with a persistent profile; a failure says which Chromium it was and what to try. */
export async function launchChromium(browser: ChromiumToLaunch, userDataDir: string, viewport: { width: number; height: number }): Promise<BrowserContext> {
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: browser.executablePath,
      args: CHROMIUM_ARGS,
      headless: true,
      env: { ...process.env, ...browser.env },
      viewport,
    });
    return context;
  } catch (error) {
    throw new Error(`Could not start ${browser.description}: ${(error as Error).message}\n${CHOOSING}.`, { cause: error });
  }
}

async function bundledChromium(): Promise<ChromiumToLaunch> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `@sparticuz/chromium ships Chromium for x64 Linux only, not ${process.platform}/${process.arch}; set SAFESHIFT_CHROMIUM to a Chromium binary.`,
    );
  }
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve('@sparticuz/chromium');
  } catch {
    throw new Error('The bundled Chromium (devDependency @sparticuz/chromium) is not installed: run `npm ci`.');
  }
  const pkgDir = packageRoot(entry);
  const { version } = JSON.parse(await readFile(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const dir = path.join(CACHE, `${PREFIX}${version}`);
  if (!existsSync(path.join(dir, READY))) await unpack(path.join(pkgDir, 'bin'), dir, version);
  return {
    description: `the bundled Chromium (@sparticuz/chromium ${version}, unpacked in ${dir})`,
    executablePath: path.join(dir, 'chromium'),
    env: {
      // The package's own libnss3/libnspr4 (built for Amazon Linux 2023, on glibc 2.34), so no system NSS is needed.
      LD_LIBRARY_PATH: [path.join(dir, 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      FONTCONFIG_PATH: dir,
    },
  };
}

function packageRoot(entry: string): string {
  for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'bin', 'chromium.br'))) return dir;
  }
  throw new Error(`@sparticuz/chromium resolved to ${entry}, but no bin/chromium.br was found above it; reinstall with \`npm ci\`.`);
}

/**
 * Unpacks into a private staging folder and renames it into place when complete, so a run killed
 * half-way never leaves a broken browser behind. Old versions' and dead runs' folders are removed.
 */
async function unpack(bin: string, dir: string, version: string): Promise<void> {
  await mkdir(CACHE, { recursive: true });
  for (const name of await readdir(CACHE)) {
    if (!name.startsWith(PREFIX) || path.join(CACHE, name) === dir) continue;
    const pid = /\.partial-(\d+)$/.exec(name)?.[1];
    if (pid && isAlive(Number(pid))) continue;
    await rm(path.join(CACHE, name), { recursive: true, force: true });
  }
  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    await pipeline(
      createReadStream(path.join(bin, 'chromium.br')),
      createBrotliDecompress(),
      createWriteStream(path.join(staging, 'chromium'), { mode: 0o755 }),
    );
    await untar(path.join(bin, 'swiftshader.tar.br'), staging); // libEGL/libGLESv2 beside the binary
    await untar(path.join(bin, 'al2023.tar.br'), staging); // lib/: NSS, NSPR, expat
    await untar(path.join(bin, 'fonts.tar.br'), path.join(staging, 'fontpack'));
    // The package's fonts.conf names /tmp/fonts; this one names where its fonts are, and the system's if any.
    await writeFile(
      path.join(staging, 'fonts.conf'),
      [
        '<?xml version="1.0"?>',
        '<!DOCTYPE fontconfig SYSTEM "fonts.dtd">',
        '<fontconfig>',
        `  <dir>${xml(path.join(dir, 'fontpack', 'fonts'))}</dir>`,
        '  <dir>/usr/share/fonts</dir>',
        '  <dir>/usr/local/share/fonts</dir>',
        `  <cachedir>${xml(path.join(dir, 'fontcache'))}</cachedir>`,
        '</fontconfig>',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(staging, READY), `${version}\n`);
    if (existsSync(path.join(dir, READY))) return; // another run finished first
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Brotli-decompresses to a .tar beside the target, then tar extracts it (tar stops reading at its end marker, so it is not fed by a pipe). */
async function untar(file: string, into: string): Promise<void> {
  await mkdir(into, { recursive: true });
  const plain = path.join(into, `.${path.basename(file, '.br')}`);
  await pipeline(createReadStream(file), createBrotliDecompress(), createWriteStream(plain));
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const tar = spawn('tar', ['-x', '-f', plain, '-C', into, '--no-same-owner'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      tar.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      tar.once('error', (e) => reject(new Error(`Could not run tar to unpack ${file}: ${e.message}`)));
      tar.once('close', (c) => resolve({ code: c, stderr: err }));
    });
    if (code !== 0) throw new Error(`tar could not unpack ${file} (exit ${code}): ${stderr.trim()}`);
  } finally {
    await rm(plain, { force: true });
  }
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

import { existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { AthanorError } from '../../domain/errors.js';
import type { Config } from '../../config/resolve-config.js';
import { backupEnv } from './backup-env.js';

/** How new backups are encrypted: not at all, to age recipients (X25519), or with a passphrase. */
export type EncryptionSettings =
  | { readonly mode: 'none' }
  | { readonly mode: 'recipients'; readonly recipients: readonly string[] }
  | { readonly mode: 'passphrase'; readonly passphrase: string };

/** What can open encrypted backups: age identities (`AGE-SECRET-KEY-1…`) and passphrases. */
export interface DecryptionKeys {
  readonly identities: readonly string[];
  readonly passphrases: readonly string[];
}

/** The settings that say how backups are encrypted and opened (see `settingSpecs`). */
export type BackupKeySettings = Pick<
  Config,
  'backupAgeRecipients' | 'backupPassphrase' | 'backupAgeIdentityFile'
>;

function passphraseOf(settings: BackupKeySettings): string | undefined {
  const value = settings.backupPassphrase;
  if (value === undefined) return undefined;
  if (value === '') {
    throw new AthanorError(
      'backup_key_missing',
      `${backupEnv.passphrase} (or the file ${backupEnv.passphraseFile} names) is empty; refusing to continue ` +
        'unencrypted. Set it or unset it',
    );
  }
  return value;
}

/**
 * The encryption of new backups, from the settings. A setting that is there but yields no usable
 * key is an error, never a silent fall back to plaintext.
 */
export function backupEncryption(settings: BackupKeySettings): EncryptionSettings {
  const rawRecipients = settings.backupAgeRecipients;
  const passphrase = passphraseOf(settings);
  if (rawRecipients !== undefined) {
    const recipients = rawRecipients
      .split(/[\s,]+/)
      .map((r) => r.trim())
      .filter((r) => r !== '');
    if (recipients.length === 0) {
      throw new AthanorError(
        'backup_key_missing',
        `${backupEnv.recipients} is set but holds no recipient; refusing to write an unencrypted backup. ` +
          `Set it to age1… public keys, comma separated (age-keygen -y key.txt prints one)`,
      );
    }
    if (passphrase !== undefined) {
      throw new AthanorError(
        'invalid_config',
        `set either ${backupEnv.recipients} or a passphrase (${backupEnv.passphrase}/_FILE), not both`,
      );
    }
    const encrypter = new Encrypter();
    for (const recipient of recipients) {
      try {
        encrypter.addRecipient(recipient);
      } catch (cause) {
        throw new AthanorError(
          'invalid_config',
          `${backupEnv.recipients}: '${recipient}' is not an age recipient (expected age1…)`,
          { cause },
        );
      }
    }
    return { mode: 'recipients', recipients };
  }
  if (passphrase !== undefined) return { mode: 'passphrase', passphrase };
  return { mode: 'none' };
}

/** The keys that open encrypted backups, from the settings: the identity file and any passphrase. */
export function backupDecryptionKeys(settings: BackupKeySettings): DecryptionKeys {
  const identities: string[] = [];
  const file = settings.backupAgeIdentityFile;
  if (file !== undefined && file !== '') {
    if (!existsSync(file)) {
      throw new AthanorError(
        'backup_key_missing',
        `${backupEnv.identityFile} names ${file}, which does not exist`,
      );
    }
    for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
      const trimmed = line.trim();
      if (trimmed.startsWith('AGE-SECRET-KEY-')) identities.push(trimmed);
    }
    if (identities.length === 0) {
      throw new AthanorError(
        'backup_key_missing',
        `${file} (${backupEnv.identityFile}) holds no AGE-SECRET-KEY-1… line`,
      );
    }
  }
  const passphrase = passphraseOf(settings);
  return { identities, passphrases: passphrase === undefined ? [] : [passphrase] };
}

/** Encrypts streams for one backup. */
export interface StreamEncrypter {
  encrypt(input: Readable): Promise<Readable>;
}

/**
 * Prepares the encryption of one backup. With a passphrase, the key is an X25519 identity stored in
 * `key.age` encrypted with the passphrase: scrypt runs once per backup instead of once per file,
 * and every file still opens with the stock `age` tool. Backups under one passphrase reuse the
 * previous backup's identity (each keeps its own copy of `key.age`), so they can share result blobs.
 */
export async function prepareEncryption(
  settings: Exclude<EncryptionSettings, { mode: 'none' }>,
  /** With a passphrase: an earlier backup's key file, reused when the passphrase opens it. */
  previousKeyFile?: Buffer,
): Promise<{ encrypter: StreamEncrypter; keyFile?: Buffer; recipients: readonly string[] }> {
  const encrypter = new Encrypter();
  let keyFile: Buffer | undefined;
  let recipients: readonly string[];
  const previous =
    settings.mode === 'passphrase' && previousKeyFile
      ? await openKeyFile(previousKeyFile, [settings.passphrase]).catch(() => undefined)
      : undefined;
  if (settings.mode === 'recipients') {
    for (const recipient of settings.recipients) encrypter.addRecipient(recipient);
    recipients = settings.recipients;
  } else if (previous && previousKeyFile) {
    const recipient = await identityToRecipient(previous);
    encrypter.addRecipient(recipient);
    keyFile = previousKeyFile;
    recipients = [recipient];
  } else {
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    encrypter.addRecipient(recipient);
    const keyEncrypter = new Encrypter();
    keyEncrypter.setPassphrase(settings.passphrase);
    keyFile = Buffer.from(
      await keyEncrypter.encrypt(`# athanor backup key: age -d key.age > key.txt\n${identity}\n`),
    );
    recipients = [recipient];
  }
  return {
    encrypter: {
      async encrypt(input) {
        const web = Readable.toWeb(input) as unknown as ReadableStream<Uint8Array>;
        const output = await encrypter.encrypt(web);
        return Readable.fromWeb(output as unknown as WebReadableStream<Uint8Array>);
      },
    },
    keyFile,
    recipients,
  };
}

/** The identity in a passphrase-protected key file; throws when no passphrase opens it. */
async function openKeyFile(keyFile: Buffer, passphrases: readonly string[]): Promise<string | undefined> {
  const keyDecrypter = new Decrypter();
  for (const passphrase of passphrases) keyDecrypter.addPassphrase(passphrase);
  const text = await keyDecrypter.decrypt(new Uint8Array(keyFile), 'text');
  return text.split(/\r?\n/).find((l) => l.startsWith('AGE-SECRET-KEY-'));
}

/** Decrypts the files of one backup. */
export interface StreamDecrypter {
  /** The plaintext of an encrypted file, as a stream (a stream input is never read whole). */
  decrypt(input: Buffer | Readable): Promise<Readable>;
}

const noMatch = /no identity matched/i;

function wrongKey(what: string, cause: unknown): AthanorError {
  return new AthanorError(
    'backup_decryption_failed',
    `cannot decrypt ${what}: ${(cause as Error).message}. Check that ${backupEnv.identityFile} ` +
      `(or the passphrase) belongs to this backup`,
    { cause },
  );
}

/**
 * A decrypter for a backup encrypted to `recipients`, or with a passphrase-protected `keyFile`.
 * Fails before anything is restored when no key is configured.
 */
export async function prepareDecryption(
  backup: { readonly id: string; readonly recipients: readonly string[]; readonly keyFile?: Buffer },
  keys: DecryptionKeys,
): Promise<StreamDecrypter> {
  const decrypter = new Decrypter();
  for (const identity of keys.identities) decrypter.addIdentity(identity);
  if (backup.keyFile !== undefined) {
    if (keys.passphrases.length === 0 && keys.identities.length === 0) {
      throw new AthanorError(
        'backup_key_missing',
        `backup ${backup.id} is encrypted with a passphrase: set ${backupEnv.passphrase} or ` +
          `${backupEnv.passphraseFile}`,
      );
    }
    if (keys.passphrases.length > 0) {
      let identity: string | undefined;
      try {
        identity = await openKeyFile(backup.keyFile, keys.passphrases);
      } catch (cause) {
        throw wrongKey(`the key of backup ${backup.id} (wrong passphrase?)`, cause);
      }
      if (!identity)
        throw new AthanorError('backup_corrupt', `the key file of backup ${backup.id} holds no key`);
      decrypter.addIdentity(identity);
    }
  } else if (keys.identities.length === 0) {
    throw new AthanorError(
      'backup_key_missing',
      `backup ${backup.id} is encrypted to ${backup.recipients.join(', ')}: set ${backupEnv.identityFile} ` +
        `to a file holding the matching AGE-SECRET-KEY-1… identity`,
    );
  }
  return {
    async decrypt(input) {
      try {
        const source = Buffer.isBuffer(input) ? Readable.from([input]) : input;
        const web = Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>;
        const output = await decrypter.decrypt(web);
        return Readable.fromWeb(output as unknown as WebReadableStream<Uint8Array>);
      } catch (cause) {
        if (noMatch.test((cause as Error).message)) {
          throw wrongKey(
            `backup ${backup.id}: none of the configured keys opens it (it is for ${backup.recipients.join(', ')})`,
            cause,
          );
        }
        throw cause;
      }
    },
  };
}

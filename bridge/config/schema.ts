/**
 * The configuration's schema, each key with what it is for. The descriptions
 * are the documentation: docs/config.example.yaml is generated from them
 * (example.ts), error messages and `offsite doctor` quote them. A key without
 * a default carries an example (`examples`), or says what it defaults to
 * (`defaultText`) when that is not a fixed value.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_BASE_TOPIC } from '../topics.js';
import { scrubBudget } from './budget.js';
import { crossChecks } from './checks.js';
import { driveSchema } from './drive.js';
import { ledSchema } from './led.js';
import { about } from './meta.js';
import {
  absolutePath,
  brokerUrl,
  host,
  mailAddress,
  nodeId,
  secretRef,
  text,
  topicLevel,
  topicPath,
} from './values.js';

export type { Drive } from './drive.js';
export type { KeyMeta } from './meta.js';

export function sanitizeNodeId(raw: string): string {
  const id = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return id || 'nas';
}

export const mqttSchema = z
  .object({
    url: brokerUrl.default('mqtt://127.0.0.1:1883').meta(
      about({
        description:
          'The broker: mqtt://host:port, or mqtts:// for TLS (ws:// and wss:// too). No user name or password in it.',
      }),
    ),
    base_topic: topicPath
      .default(DEFAULT_BASE_TOPIC)
      .meta(about({ description: 'Every topic starts with <base_topic>/<node_id>/.' })),
    discovery_prefix: topicLevel
      .default('homeassistant')
      .meta(about({ description: "Home Assistant's MQTT discovery prefix." })),
    username: text
      .optional()
      .meta(about({ description: 'The user to log in to the broker as.', examples: ['offsite'] })),
    password_file: secretRef.optional().meta(
      about({
        description:
          "A file holding the broker's password (mode 0600), or the name of a systemd credential. Never the password itself.",
        examples: ['/etc/offsite/mqtt.password'],
      }),
    ),
    ca_file: absolutePath.optional().meta(
      about({
        description: "The CA certificate that signed the broker's, for mqtts:// with a private CA.",
        examples: ['/etc/offsite/ca.pem'],
      }),
    ),
    client_id: topicLevel.default('offsite').meta(
      about({
        description: "The start of offsite's MQTT client ids (each client adds its role and process).",
      }),
    ),
    enabled: z
      .boolean()
      .default(true)
      .meta(about({ description: 'false: keep the section, publish nothing.' })),
  })
  .strict();

const smtpSchema = z
  .object({
    host: host.default('127.0.0.1').meta(about({ description: 'The mail server.' })),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .default(25)
      .meta(about({ description: "The mail server's port." })),
    secure: z
      .boolean()
      .default(false)
      .meta(
        about({
          description:
            'true: TLS from the first byte (port 465). false: STARTTLS when the server offers it, required for a login to another machine.',
        }),
      ),
    user: text.optional().meta(
      about({
        description:
          'The user to log in as. The password goes only over TLS, unless the server is this machine.',
        examples: ['nas'],
      }),
    ),
    password_file: secretRef.optional().meta(
      about({
        description: 'A file holding the mail password (mode 0600), or the name of a systemd credential.',
        examples: ['/etc/offsite/smtp.password'],
      }),
    ),
    allow_plaintext_login: z
      .boolean()
      .default(false)
      .meta(
        about({
          description:
            'DANGEROUS: true sends the login in clear to a server that is not this machine and offers no TLS (docs/email.md).',
        }),
      ),
  })
  .strict();

export const emailSchema = z
  .object({
    smtp: smtpSchema
      .default({ host: '127.0.0.1', port: 25, secure: false, allow_plaintext_login: false })
      .meta(about({ description: 'How mail is sent.' })),
    from: mailAddress.meta(about({ description: 'The sender.', examples: ['nas@example.org'] })),
    to: z
      .array(mailAddress)
      .min(1, 'at least one recipient')
      .meta(about({ description: 'Who gets the mail.', examples: [['me@example.org']] })),
    on: z
      .array(z.enum(['failure', 'success', 'overdue', 'warning']))
      .default(['failure', 'overdue', 'warning'])
      .meta(
        about({
          description:
            'When to mail: failure, success, overdue, warning (a backup that could not copy some files).',
        }),
      ),
  })
  .strict();

const fields = z
  .object({
    node_id: nodeId
      .default(() => sanitizeNodeId(hostname()))
      .meta(
        about({
          description:
            'Names this NAS in MQTT topics (<base_topic>/<node_id>/...) and in Home Assistant: lower-case letters, digits and -.',
          defaultText: 'the host name, lower-cased, anything else turned into -',
          examples: ['nas'],
        }),
      ),
    state_dir: absolutePath.default('/var/lib/offsite').meta(
      about({
        description:
          'Where offsite keeps what it knows: the ledger (when each drive last succeeded), enrolment tokens, LUKS header backups, locks.',
      }),
    ),
    source: z
      .object({
        path: absolutePath.meta(
          about({
            description: 'What is copied: the backup repository or directory. offsite only reads it.',
            examples: ['/srv/backup'],
          }),
        ),
        lock: z
          .array(text)
          .min(1)
          .optional()
          .meta(
            about({
              description:
                "A command that holds the repository's lock for the whole copy, so nothing writes to it meanwhile: rsync runs as <lock...> rsync ...",
              examples: [['borg', 'with-lock', '/srv/backup']],
            }),
          ),
        exclude: z
          .array(text)
          .default([])
          .meta(about({ description: 'rsync --exclude patterns: what is not copied.' })),
        rsync_args: z
          .array(text.regex(/^-/, 'an rsync option starting with -'))
          .default([])
          .meta(about({ description: 'More rsync options, e.g. [--bwlimit=20M] for a slow USB bus.' })),
      })
      .strict()
      .meta(about({ description: 'What is backed up.' })),
    overdue_after_days: z
      .number()
      .positive()
      .default(35)
      .meta(
        about({
          description:
            'A drive whose last good copy is older than this is overdue: a reminder mail, an MQTT event, and an amber LED when every drive is.',
        }),
      ),
    // none yet is valid: prepare-drive and enrol add the drives to a fresh file (docs/setup.md)
    drives: z
      .array(driveSchema)
      .default([])
      .meta(
        about({
          description:
            'The drives that take turns, each one of three kinds: encrypted (luks_uuid, key_file, mount_point), plain (uuid, mount_point) or a directory. offsite prepare-drive and offsite enrol add them.',
          examples: [
            [
              {
                name: 'alpha',
                luks_uuid: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
                key_file: '/etc/offsite/keys/alpha.key',
                mount_point: '/mnt/offsite/alpha',
              },
              {
                name: 'bravo',
                uuid: '2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2',
                mount_point: '/mnt/offsite/bravo',
              },
              { name: 'scratch', directory: '/srv/offsite-scratch' },
            ],
          ],
        }),
      ),
    verify: z
      .object({
        scrub: scrubBudget.default({ percent: 2 }).meta(
          about({
            description:
              'How much of the copy each run reads back beyond what it wrote, where the last run stopped: a share ("2%"), a size ("20GB", "512MiB"), a time ("90s", "5min": at the rate the drive last read back at) or 0 for none.',
            fileDefault: '2%',
          }),
        ),
        checksum_sample: z
          .number()
          .int()
          .min(0)
          .optional()
          .meta(
            about({
              description: 'Replaced by scrub; still accepted so that older files load.',
              examples: [32],
            }),
          ),
        borg_check: z
          .enum(['auto', 'always', 'never'])
          .default('auto')
          .meta(
            about({
              description:
                'offsite scrub: borg check --repository-only on a throwaway view of the copy (never the copy itself: borg rewrites what it checks). auto: when the copy is a Borg repository and borg is installed; always: fail without borg; never.',
            }),
          ),
      })
      .strict()
      .default({ scrub: { percent: 2 }, borg_check: 'auto' })
      .meta(about({ description: 'How each copy is checked.' })),
    mqtt: mqttSchema.optional().meta(
      about({
        description:
          'Status over MQTT, for the LED agent and Home Assistant. Without this section nothing is published.',
      }),
    ),
    email: emailSchema.optional().meta(
      about({
        description: 'Mail about failures and overdue drives. Without this section nothing is mailed.',
      }),
    ),
    led: ledSchema.default(ledSchema.parse({})).meta(about({ description: 'The status light on the NAS.' })),
  })
  .strict();

export type ConfigFields = z.infer<typeof fields>;

export const schema = fields.superRefine(crossChecks);

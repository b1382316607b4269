/** The status light: which one, how bright, whose backups, and what each state looks like. */
import { basename } from 'node:path';
import { z } from 'zod';
import { about } from './meta.js';
import { absolutePath, driveName, hexColor, nodeId, serial } from './values.js';

const ledStateStyle = z
  .object({
    color: hexColor.meta(about({ description: 'A colour, "#rrggbb".' })),
    pattern: z
      .enum(['steady', 'blink', 'pulse', 'off'])
      .meta(about({ description: 'steady, blink, pulse or off.' })),
  })
  .strict();

const style = (color: string, pattern: 'steady' | 'blink' | 'pulse' | 'off', description: string) =>
  ledStateStyle.default({ color, pattern }).meta(about({ description }));

const ledNodeSchema = z
  .object({
    node: nodeId.meta(about({ description: "The other NAS's node_id.", examples: ['nas-2'] })),
    drives: z
      .array(driveName)
      .optional()
      .meta(about({ description: 'The drives of that node the LED shows.', examples: [['charlie']] })),
  })
  .strict();

export const ledSchema = z
  .object({
    driver: z
      .enum(['blinkstick', 'sysfs', 'console', 'none'])
      .default('none')
      .meta(
        about({
          description:
            'blinkstick (a USB BlinkStick), sysfs (an LED under /sys/class/leds), console (this terminal, for a try) or none.',
        }),
      ),
    index: z
      .number()
      .int()
      .min(0)
      .max(63)
      .default(0)
      .meta(about({ description: 'Which LED of a BlinkStick Pro or Strip (0 is the first).' })),
    channel: z
      .number()
      .int()
      .min(0)
      .max(2)
      .default(0)
      .meta(about({ description: 'Which channel of a BlinkStick Pro (0 to 2).' })),
    brightness: z
      .number()
      .min(1)
      .max(100)
      .default(100)
      .meta(about({ description: "A cap on brightness in percent, like the BlinkStick CLI's --limit." })),
    path: absolutePath
      .refine(
        (p) => /^[A-Za-z0-9:_.-]+$/.test(basename(p)),
        'an LED class directory like /sys/class/leds/nas:rgb:status',
      )
      .optional()
      .meta(
        about({
          description: "For driver: sysfs, the LED's class directory.",
          examples: ['/sys/class/leds/nas:rgb:status'],
        }),
      ),
    serial: serial.optional().meta(
      about({
        description: 'The serial number of the BlinkStick to use when more than one is plugged in.',
        examples: ['BS012345-3.0'],
      }),
    ),
    nodes: z
      .array(z.union([nodeId, ledNodeSchema]))
      .optional()
      .meta(
        about({
          description:
            'The NASes whose backups the LED shows: this one by default. Another NAS is named with its drives, since the LED follows only drives it knows (docs/led.md).',
          defaultText: 'this node, with its drives',
          examples: [['nas', { node: 'nas-2', drives: ['charlie'] }]],
        }),
      ),
    states: z
      .object({
        running: style('#33c280', 'steady', 'While a backup runs.'),
        success: style('#00ff00', 'steady', 'The last backup succeeded: safe to remove.'),
        failed: style('#ff0000', 'steady', 'The last backup failed.'),
        open: style(
          '#0050ff',
          'blink',
          'A drive is open (offsite open): not safe to remove. Blinking, so that no LED shows it as it shows success.',
        ),
        overdue: style('#ffbf00', 'pulse', 'Every drive is overdue.'),
        idle: style('#000000', 'off', 'Nothing to show.'),
      })
      .strict()
      .default({
        running: { color: '#33c280', pattern: 'steady' },
        success: { color: '#00ff00', pattern: 'steady' },
        failed: { color: '#ff0000', pattern: 'steady' },
        open: { color: '#0050ff', pattern: 'blink' },
        overdue: { color: '#ffbf00', pattern: 'pulse' },
        idle: { color: '#000000', pattern: 'off' },
      })
      .meta(about({ description: 'The colour and pattern of each state.' })),
  })
  .strict();

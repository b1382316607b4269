/**
 * What discovery last told Home Assistant, kept in state_dir/discovery.json,
 * so that the next publish can take back what the configuration no longer
 * has: a removed (or renamed) drive's entities, or the whole device when the
 * node id changed. Without it a stale entity would live on in Home Assistant.
 */
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from '../state-file.js';
import type { Platform } from './component.js';

export interface Published {
  /** the discovery topic */
  topic: string;
  /** the node's topic root, `<base_topic>/<node_id>` */
  root: string;
  /** component id -> platform */
  components: Record<string, Platform>;
  /**
   * components taken back, id -> platform: their `{ "p": ... }` removal entries
   * go out with every later publish (a Home Assistant that was offline when
   * they were first sent would otherwise keep those entities for ever)
   */
  removed?: Record<string, Platform>;
  /** retained topics of the drives (`<root>/drive/<name>`) */
  driveTopics: string[];
}

export function publishedFile(stateDir: string): string {
  return join(stateDir, 'discovery.json');
}

export function loadPublished(stateDir: string): Published | null {
  try {
    const p = readJson<Published | null>(publishedFile(stateDir), null);
    return p && typeof p.topic === 'string' && p.components ? p : null;
  } catch {
    // unreadable or corrupt: the worst outcome is a stale entity, not a failed backup
    return null;
  }
}

export function savePublished(stateDir: string, published: Published): void {
  writeJsonAtomic(publishedFile(stateDir), published);
}

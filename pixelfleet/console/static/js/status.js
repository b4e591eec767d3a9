// How a task's state reads on screen.

import { h } from "./dom.js";

export const FINAL = new Set(["succeeded", "failed", "cancelled"]);

const LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  cancelled: "Cancelled",
};

/** The status as a word (colour only repeats it). */
export function statusBadge(status) {
  return h("span", { class: `badge badge-${status}` }, LABELS[status] || status);
}

export function statusLabel(status) {
  return LABELS[status] || status;
}

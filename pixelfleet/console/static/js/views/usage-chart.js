// The credits spent each day of the last 30, as an SVG bar chart drawn from GET /v1/usage.
// The bars are an image (role="img") whose label sums them up; the numbers of each day with
// usage are also listed for screen readers, and each bar's <title> shows them on hover.

import { call } from "../api.js";
import { h, replace } from "../dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 100;
const STEP = WIDTH / 30;

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

function dayName(key) {
  // The key is a UTC day: named as such, whatever the reader's zone.
  return new Date(`${key}T00:00:00Z`).toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
}

function sentence(bucket) {
  const refunded = bucket.credits_refunded ? `, ${bucket.credits_refunded} refunded` : "";
  return `${dayName(bucket.key)}: ${bucket.credits_spent} credits spent${refunded}`;
}

export function usageChart(signal) {
  const chart = h("div", { class: "usage-chart" }, h("p", { role: "status" }, "Loading usage…"));
  const element = h("div", { class: "card usage" }, h("h2", {}, "Credits spent, last 30 days"), chart);

  function draw(buckets) {
    const spent = buckets.reduce((sum, bucket) => sum + bucket.credits_spent, 0);
    const top = Math.max(1, ...buckets.map((bucket) => bucket.credits_spent));
    const busiest = buckets.reduce((best, bucket) => (bucket.credits_spent > best.credits_spent ? bucket : best), buckets[0]);
    const summary = spent
      ? `Credits spent per day over the last 30 days: ${spent} in all, the most on ${dayName(busiest.key)} (${busiest.credits_spent}).`
      : "Credits spent per day over the last 30 days: none.";
    const bars = buckets.map((bucket, index) => {
      const height = (bucket.credits_spent / top) * (HEIGHT - 4);
      return svg(
        "rect",
        {
          x: index * STEP + 1,
          y: HEIGHT - height,
          width: STEP - 2,
          height,
          "data-day": bucket.key,
          "data-credits": bucket.credits_spent,
        },
        svg("title", {}, sentence(bucket)),
      );
    });
    const used = buckets.filter((bucket) => bucket.credits_spent || bucket.credits_refunded);
    replace(
      chart,
      svg(
        "svg",
        { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", role: "img", "aria-label": summary },
        svg("line", { x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5, class: "axis" }),
        ...bars,
      ),
      h(
        "div",
        { class: "usage-scale", "aria-hidden": "true" },
        h("span", {}, dayName(buckets[0].key)),
        h("span", {}, `most in a day: ${spent ? top : 0}`),
        h("span", {}, dayName(buckets[buckets.length - 1].key)),
      ),
      h("ul", { class: "visually-hidden" }, used.map((bucket) => h("li", {}, sentence(bucket)))),
    );
  }

  async function load() {
    const usage = await call("GET", "/v1/usage?group_by=day", { signal });
    draw(usage.buckets);
  }

  return { element, load };
}

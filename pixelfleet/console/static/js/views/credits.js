// The balance, the ledger, and buying a pack through Razorpay Checkout.

import { call } from "../api.js";
import { formatDate, formatMoney, h, replace } from "../dom.js";
import { alertBox, showAlert, showProblem } from "../forms.js";
import { usageChart } from "./usage-chart.js";

const CHECKOUT_SCRIPT = "https://checkout.razorpay.com/v1/checkout.js";
const PAGE_SIZE = 20;

let checkoutLoading = null;

function loadCheckout() {
  checkoutLoading ||= new Promise((resolve, reject) => {
    const script = h("script", { src: CHECKOUT_SCRIPT, async: true });
    script.addEventListener("load", () => resolve(window.Razorpay));
    script.addEventListener("error", () => {
      checkoutLoading = null;
      script.remove();
      reject(new Error("Razorpay Checkout could not be loaded. Check your connection and try again."));
    });
    document.head.append(script);
  });
  return checkoutLoading;
}

const KINDS = {
  grant: "Credits granted",
  purchase: "Purchase",
  purchase_reversal: "Refunded payment",
  task_debit: "Task",
  task_refund: "Task refunded",
  admin_adjust: "Adjustment",
};

export function creditsView(app) {
  const controller = new AbortController();
  const box = alertBox();
  const balance = h("p", { class: "balance", "aria-live": "polite" }, "…");
  const usage = usageChart(controller.signal);
  const packs = h("div", { class: "packs" }, h("p", { role: "status" }, "Loading the packs…"));
  const ledgerRows = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const element = h(
    "section",
    {},
    h("h1", { tabindex: -1 }, "Credits"),
    box,
    h("div", { class: "side-by-side" }, h("div", { class: "card" }, h("h2", {}, "Balance"), balance), usage.element),
    h("div", { class: "card" }, h("h2", {}, "Buy credits"), packs),
    h(
      "div",
      { class: "card" },
      h("h2", {}, "History"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "ledger" },
          h("caption", { class: "visually-hidden" }, "Credit history, newest first"),
          h("thead", {}, h("tr", {}, ["When", "What", "Credits", "Balance after"].map((name) => h("th", { scope: "col" }, name)))),
          ledgerRows,
        ),
      ),
      more,
    ),
  );

  let cursor = null;
  let reading = Promise.resolve();

  /** Reads the balance and a page of the ledger (the first again when `reset`); one read
   *  at a time, so a page is never added twice. */
  function loadLedger(reset) {
    reading = reading.catch(() => {}).then(() => readLedger(reset));
    return reading;
  }

  async function readLedger(reset) {
    const query = new URLSearchParams({ limit: PAGE_SIZE });
    if (!reset && cursor) query.set("cursor", cursor);
    const credits = await call("GET", `/v1/credits?${query}`, { signal: controller.signal });
    balance.textContent = `${credits.balance} credits`;
    if (reset) replace(ledgerRows);
    for (const entry of credits.ledger.items) {
      const what = [KINDS[entry.kind] || entry.kind, entry.note].filter(Boolean).join(": ");
      const task = entry.task_id ? h("a", { href: `#/tasks/${entry.task_id}` }, entry.task_id.slice(0, 8)) : null;
      ledgerRows.append(
        h(
          "tr",
          {},
          h("td", {}, formatDate(entry.created_at)),
          h("td", {}, what, task ? " " : null, task),
          h("td", { class: entry.amount < 0 ? "debit" : "credit" }, entry.amount > 0 ? `+${entry.amount}` : String(entry.amount)),
          h("td", {}, String(entry.balance_after)),
        ),
      );
    }
    cursor = credits.ledger.next_cursor;
    more.hidden = !cursor;
  }

  async function buy(pack, button) {
    button.disabled = true;
    showAlert(box, "");
    try {
      const order = await call("POST", "/v1/payments/orders", {
        json: { pack_id: pack.id },
        headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      const Razorpay = await loadCheckout();
      const me = await app.refreshAccount();
      let failed = false;
      const checkout = new Razorpay({
        key: order.key_id,
        order_id: order.order_id,
        amount: order.amount,
        currency: order.currency,
        name: "PixelFleet",
        description: `${pack.credits} credits`,
        prefill: { email: me?.email },
        handler: async (answer) => {
          try {
            const payment = await call("POST", "/v1/payments/verify", {
              json: {
                razorpay_order_id: answer.razorpay_order_id,
                razorpay_payment_id: answer.razorpay_payment_id,
                razorpay_signature: answer.razorpay_signature,
              },
            });
            showAlert(box, `Payment received: ${payment.credits} credits added.`, "success");
            await Promise.all([loadLedger(true), usage.load(), app.refreshAccount()]);
          } catch (error) {
            showProblem(box, error);
          }
        },
        modal: {
          ondismiss: () => {
            if (!failed) {
              showAlert(box, "The payment was not completed. If you were charged, the credits arrive shortly.", "info");
            }
          },
        },
      });
      checkout.on("payment.failed", (answer) => {
        failed = true;
        showAlert(box, `The payment failed: ${answer.error?.description || "no reason given"}.`);
      });
      checkout.open();
    } catch (error) {
      if (error instanceof Error && !("status" in error)) showAlert(box, error.message);
      else showProblem(box, error);
    } finally {
      button.disabled = false;
    }
  }

  call("GET", "/v1/payments/packs", { signal: controller.signal })
    .then((list) => {
      replace(
        packs,
        list.items.map((pack) => {
          const button = h(
            "button",
            { type: "button", class: "primary" },
            `Buy ${pack.credits} credits for ${formatMoney(pack.amount, pack.currency)}`,
          );
          button.addEventListener("click", () => buy(pack, button));
          return h("div", { class: "pack" }, h("h3", {}, pack.id), button);
        }),
      );
    })
    .catch((error) => {
      if (error.name === "AbortError") return;
      const message =
        error.status === 503
          ? `Buying credits is not available here yet. ${error.message}`
          : error.message;
      replace(packs, h("p", { class: "notice", role: "status" }, message));
    });

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      await loadLedger(false);
    } catch (error) {
      showProblem(box, error);
    } finally {
      more.disabled = false;
    }
  });
  loadLedger(true).catch((error) => {
    if (error.name !== "AbortError") showProblem(box, error);
  });
  usage.load().catch((error) => {
    if (error.name !== "AbortError") showProblem(box, error);
  });
  return { title: "Credits", element, dispose: () => controller.abort() };
}

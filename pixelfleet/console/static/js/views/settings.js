// The account's settings: its password, whether its email is confirmed, the secret that
// signs its webhooks, a copy of its data, and its deletion.

import { call, request } from "../api.js";
import { field, formatDate, h } from "../dom.js";
import { alertBox, busy, showAlert, showProblem } from "../forms.js";

function passwordInput(name, autocomplete) {
  return h("input", { type: "password", name, autocomplete, required: true, maxlength: 256 });
}

function changePasswordForm() {
  const current = passwordInput("current_password", "current-password");
  const next = passwordInput("new_password", "new-password");
  next.minLength = 8;
  const box = alertBox();
  const form = h(
    "form",
    { class: "card", "aria-label": "Change your password" },
    h("h2", {}, "Change your password"),
    box,
    field("Current password", current),
    field("New password", next, "8 characters or more; not a common or breached password."),
    h("button", { type: "submit" }, "Change password"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, async () => {
      await call("POST", "/v1/me/password", {
        json: { current_password: current.value, new_password: next.value },
      });
      form.reset();
      showAlert(box, "Your password is changed. Every other login of your account has ended.", "success");
      box.focus();
    });
  });
  return form;
}

function emailCard(me) {
  const box = alertBox();
  const card = h("section", { class: "card", "aria-labelledby": "email-heading" });
  const heading = h("h2", { id: "email-heading" }, "Email");
  if (me.email_verified_at) {
    card.append(heading, h("p", {}, `${me.email}, confirmed on ${formatDate(me.email_verified_at)}.`));
    return card;
  }
  const resend = h("button", { type: "button", class: "secondary" }, "Send a new confirmation link");
  const form = h("form", { "aria-label": "Confirm your email" }, box, resend);
  resend.addEventListener("click", () =>
    busy(form, box, async () => {
      const answer = await call("POST", "/v1/me/email-verification");
      showAlert(box, answer.detail, "success");
    }),
  );
  card.append(heading, h("p", {}, `${me.email} is not confirmed yet.`), form);
  return card;
}

function webhookSecretCard() {
  const box = alertBox();
  const rotate = h("button", { type: "submit", class: "secondary" }, "Rotate the webhook secret");
  const shown = h("div", { hidden: true });
  const form = h(
    "form",
    { class: "card", "aria-label": "Webhook signing secret" },
    h("h2", {}, "Webhook signing secret"),
    h(
      "p",
      {},
      "A new secret signs your webhooks from the moment you rotate it; the previous one still " +
        "signs beside it for a while, so your receiver can switch without missing an event.",
    ),
    box,
    shown,
    rotate,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, async () => {
      const answer = await call("POST", "/v1/me/webhook-secret/rotate");
      const secret = h("input", { type: "text", readonly: true, value: answer.secret, spellcheck: "false" });
      const status = h("p", { role: "status" });
      const copy = h("button", { type: "button", class: "secondary" }, "Copy the new secret");
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(answer.secret);
          status.textContent = "The new secret is copied.";
        } catch {
          secret.select();
          status.textContent = "The browser did not allow copying: the secret is selected, copy it.";
        }
      });
      const until = answer.previous_secret_expires_at
        ? ` The previous one still signs until ${formatDate(answer.previous_secret_expires_at)}.`
        : "";
      shown.replaceChildren(field("New webhook secret", secret), copy, status);
      shown.hidden = false;
      showAlert(box, `Your webhooks are signed with a new secret. Copy it now: it is shown once here.${until}`, "success");
      box.focus();
    });
  });
  return form;
}

/** The filename a response's Content-Disposition names (a fallback when it names none). */
function attachmentName(response, fallback) {
  const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return named ? named[1] : fallback;
}

function exportCard() {
  const box = alertBox();
  const form = h(
    "form",
    { class: "card", "aria-label": "Download your data" },
    h("h2", {}, "Download your data"),
    h(
      "p",
      {},
      "One JSON file of everything your account holds: your profile, credit ledger, payments, " +
        "tasks with their pipelines, presets, and the details of your assets and API keys " +
        "(never a password, key or secret).",
    ),
    box,
    h("button", { type: "submit", class: "secondary" }, "Download my data"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, async () => {
      const response = await request("GET", "/v1/me/export");
      const name = attachmentName(response, "pixelfleet-export.json");
      const url = URL.createObjectURL(await response.blob());
      const link = h("a", { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      showAlert(box, `Your data is saved as ${name}.`, "success");
    });
  });
  return form;
}

function goodbyeView() {
  const element = h(
    "section",
    { class: "auth" },
    h("h1", { tabindex: -1 }, "Your account is deleted"),
    h(
      "p",
      { class: "lead" },
      "Your images, tasks, presets, assets and API keys are deleted, and every login has ended. " +
        "Payments and credit ledger lines are kept for accounting, under an anonymised account. Goodbye!",
    ),
    h("p", {}, h("a", { href: "/" }, "Back to the start page")),
  );
  return { title: "Account deleted", element };
}

function deleteAccountCard(app) {
  const box = alertBox();
  const password = passwordInput("password", "current-password");
  const ask = h(
    "form",
    { "aria-label": "Delete your account" },
    box,
    field("Your password", password, "Deleting cannot be undone."),
    h("button", { type: "submit", class: "danger" }, "Delete my account…"),
  );
  const question = h("p", { id: "delete-question", tabindex: -1 }, "Delete your account for good?");
  const keep = h("button", { type: "button", class: "secondary" }, "Keep my account");
  const confirmBox = alertBox();
  const confirm = h(
    "form",
    { "aria-labelledby": "delete-question", hidden: true },
    question,
    h(
      "p",
      {},
      "Your queued tasks are cancelled and refunded, then your images, tasks, presets, assets, " +
        "API keys and logins are deleted. This cannot be undone.",
    ),
    confirmBox,
    h("button", { type: "submit", class: "danger" }, "Yes, delete my account"),
    keep,
  );
  const backToAsking = () => {
    confirm.hidden = true;
    ask.hidden = false;
  };
  ask.addEventListener("submit", (event) => {
    event.preventDefault();
    showAlert(box, "");
    ask.hidden = true;
    confirm.hidden = false;
    question.focus();
  });
  keep.addEventListener("click", () => {
    backToAsking();
    password.value = "";
    password.focus();
  });
  confirm.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(confirm, confirmBox, async () => {
      try {
        await call("DELETE", "/v1/me", { json: { password: password.value } });
      } catch (error) {
        backToAsking();
        showProblem(box, error, ask);
        box.focus();
        return;
      }
      await app.leave(goodbyeView());
    });
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "delete-heading" },
    h("h2", { id: "delete-heading" }, "Delete your account"),
    ask,
    confirm,
  );
}

export function settingsView(app) {
  const email = h("div", {}, h("p", { class: "loading", role: "status" }, "Loading…"));
  app.refreshAccount().then((me) => email.replaceChildren(emailCard(me))).catch(() => {});
  const element = h(
    "section",
    { class: "settings" },
    h("h1", { tabindex: -1 }, "Settings"),
    changePasswordForm(),
    email,
    webhookSecretCard(),
    exportCard(),
    deleteAccountCard(app),
  );
  return { title: "Settings", element };
}

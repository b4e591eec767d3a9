// The account's settings: its password, and whether its email is confirmed.

import { call } from "../api.js";
import { field, formatDate, h } from "../dom.js";
import { alertBox, busy, showAlert } from "../forms.js";

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

export function settingsView(app) {
  const email = h("div", {}, h("p", { class: "loading", role: "status" }, "Loading…"));
  app.refreshAccount().then((me) => email.replaceChildren(emailCard(me))).catch(() => {});
  const element = h(
    "section",
    { class: "settings" },
    h("h1", { tabindex: -1 }, "Settings"),
    changePasswordForm(),
    email,
  );
  return { title: "Settings", element };
}

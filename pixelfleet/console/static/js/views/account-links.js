// The pages a mailed link opens: `/reset-password?token=…` and `/verify-email?token=…`. Both
// work signed out; once done they lead back to the console.

import { call } from "../api.js";
import { field, h } from "../dom.js";
import { alertBox, busy, showAlert, showProblem } from "../forms.js";

// The link's token, read once: the address bar (and the browser's history) keeps the page's
// path only.
const linkToken = new URLSearchParams(location.search).get("token") || "";
if (linkToken) history.replaceState(null, "", location.pathname);

export function resetPasswordView() {
  const token = linkToken;
  const password = h("input", {
    type: "password",
    name: "new_password",
    autocomplete: "new-password",
    required: true,
    minlength: 8,
    maxlength: 256,
  });
  const box = alertBox();
  const done = h("p", { class: "lead", hidden: true, role: "status" });
  const form = h(
    "form",
    { class: "card", "aria-label": "Choose a new password" },
    h("h2", {}, "Choose a new password"),
    box,
    field("New password", password, "8 characters or more; not a common or breached password."),
    h("button", { type: "submit" }, "Set the new password"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, async () => {
      await call("POST", "/v1/auth/password-reset/confirm", {
        json: { token, new_password: password.value },
        anonymous: true,
      });
      form.hidden = true;
      done.hidden = false;
      done.textContent = "Your password is changed, and every login from before has ended. Log in with the new one.";
      done.append(" ", h("a", { href: "/" }, "Log in"));
    });
  });
  if (!token) showAlert(box, "This page needs the link from your mail, whole.");
  const element = h(
    "section",
    { class: "auth" },
    h("h1", { tabindex: -1 }, "Reset your password"),
    done,
    form,
  );
  return { title: "Reset your password", element };
}

export function verifyEmailView() {
  const token = linkToken;
  const box = alertBox();
  const status = h("p", { class: "lead", role: "status" }, "Confirming your email…");
  const onward = h("p", { hidden: true }, h("a", { href: "/" }, "Go to the console"));
  call("POST", "/v1/auth/verify-email", { json: { token }, anonymous: true })
    .then(() => {
      status.textContent = "Your email is confirmed. You can submit tasks and buy credits.";
      onward.hidden = false;
    })
    .catch((error) => {
      status.textContent = "";
      showProblem(box, error);
      onward.hidden = false;
    });
  const element = h(
    "section",
    { class: "auth" },
    h("h1", { tabindex: -1 }, "Confirm your email"),
    status,
    box,
    onward,
  );
  return { title: "Confirm your email", element };
}

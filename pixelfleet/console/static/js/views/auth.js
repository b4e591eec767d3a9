// Log in, or create an account.

import { call, session } from "../api.js";
import { field, h } from "../dom.js";
import { alertBox, busy, showAlert } from "../forms.js";

function emailInput() {
  return h("input", {
    type: "email",
    name: "email",
    autocomplete: "email",
    required: true,
    maxlength: 320,
  });
}

function credentialsForm({ legend, submitLabel, passwordAutocomplete, passwordHint, onSubmit }) {
  const email = emailInput();
  const password = h("input", {
    type: "password",
    name: "password",
    autocomplete: passwordAutocomplete,
    required: true,
    minlength: 8,
    maxlength: 256,
  });
  const box = alertBox();
  const form = h(
    "form",
    { class: "card", "aria-label": legend },
    h("h2", {}, legend),
    box,
    field("Email", email),
    field("Password", password, passwordHint),
    h("button", { type: "submit" }, submitLabel),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, () => onSubmit(email.value.trim(), password.value, box));
  });
  return form;
}

function forgottenPasswordForm() {
  const email = emailInput();
  const box = alertBox();
  const form = h(
    "form",
    { class: "card", "aria-label": "Forgot your password?" },
    h("h2", {}, "Forgot your password?"),
    box,
    field("Email", email, "We mail a link that lets you choose a new one."),
    h("button", { type: "submit", class: "secondary" }, "Send me a reset link"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, box, async () => {
      const answer = await call("POST", "/v1/auth/password-reset", {
        json: { email: email.value.trim() },
        anonymous: true,
      });
      showAlert(box, answer.detail, "success");
    });
  });
  return form;
}

export function authView() {
  const logIn = credentialsForm({
    legend: "Log in",
    submitLabel: "Log in",
    passwordAutocomplete: "current-password",
    onSubmit: (email, password) => session.logIn(email, password),
  });
  const signUp = credentialsForm({
    legend: "Create an account",
    submitLabel: "Sign up",
    passwordAutocomplete: "new-password",
    passwordHint: "8 characters or more; not a common or breached password. A few unrelated words work well.",
    onSubmit: async (email, password, box) => {
      try {
        await session.signUp(email, password);
      } catch (error) {
        if (error.status === 401) {
          // Sign-up answers the same whether or not the email was taken.
          showAlert(box, "This email may already have an account: log in with its password.");
          return;
        }
        throw error;
      }
    },
  });
  const element = h(
    "section",
    { class: "auth" },
    h("h1", { tabindex: -1 }, "Process images for credits"),
    h(
      "p",
      { class: "lead" },
      "Upload a photo, choose what to do with it, and download the result.",
    ),
    h("div", { class: "auth-forms" }, logIn, signUp),
    forgottenPasswordForm(),
  );
  return { title: "Log in", element };
}

// The dashboard's shell: session, header, and a hash router over the page modules.

import { api, fill, h, notice, session } from "./lib.js";
import * as markets from "./markets.js";
import * as market from "./market.js";
import * as account from "./account.js";
import * as keys from "./keys.js";

const root = document.getElementById("app");
let unmount = null;

async function loadSession() {
  try {
    const data = await api("/dashboard/api/session");
    session.user = data.user;
    session.csrf = data.csrf_token;
    session.env = data.env;
  } catch {
    session.user = null;
    session.csrf = null;
  }
}

function header() {
  const env = document.getElementById("env");
  if (session.env) {
    env.hidden = false;
    env.textContent = session.env.toUpperCase();
    env.className = `env ${session.env}`;
  }
  const who = document.getElementById("who");
  if (session.user) {
    fill(
      who,
      h("span", { class: "email", title: session.user.account_id }, session.user.email),
      h("button", { class: "link", id: "logout", onclick: logout }, "Log out"),
    );
  } else {
    fill(who, h("a", { href: "#/login" }, "Log in"), h("a", { href: "#/signup", class: "btn small" }, "Sign up"));
  }
  const page = (location.hash.slice(2) || "markets").split("/")[0];
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.route === page || (page === "market" && link.dataset.route === "markets"));
  }
}

async function logout() {
  try {
    await api("/dashboard/api/logout", { method: "POST" });
  } catch {
    /* the session is gone either way */
  }
  session.user = null;
  session.csrf = null;
  location.hash = "#/login";
  route();
}

function authPage(mode) {
  const signup = mode === "signup";
  document.title = signup ? "Sign up · Ballast" : "Log in · Ballast";
  const message = h("p", { class: "notice", role: "alert" });
  const email = h("input", { type: "email", name: "email", id: "email", autocomplete: "username", required: true });
  const password = h("input", {
    type: "password",
    name: "password",
    id: "password",
    autocomplete: signup ? "new-password" : "current-password",
    required: true,
    minlength: signup ? 10 : undefined,
  });
  const submit = h("button", { type: "submit", class: "btn primary", id: "auth-submit" }, signup ? "Create account" : "Log in");
  const form = h(
    "form",
    { class: "auth", id: signup ? "signup-form" : "login-form" },
    h("h1", {}, signup ? "Create your Ballast account" : "Log in to Ballast"),
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "password" }, "Password"),
    password,
    signup ? h("p", { class: "hint" }, "At least 10 characters. Sandbox accounts start with test USDC.") : null,
    submit,
    message,
    h(
      "p",
      { class: "hint" },
      signup ? "Have an account? " : "New here? ",
      h("a", { href: signup ? "#/login" : "#/signup" }, signup ? "Log in" : "Sign up"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    notice(message, "");
    try {
      const data = await api(`/dashboard/api/${mode}`, {
        method: "POST",
        body: { email: email.value, password: password.value },
      });
      session.user = data.user;
      session.csrf = data.csrf_token;
      location.hash = signup ? "#/keys" : "#/account";
    } catch (error) {
      notice(message, error.message, "error");
    } finally {
      submit.disabled = false;
    }
  });
  fill(root, h("div", { class: "auth-wrap" }, form));
  email.focus();
  return null;
}

function needLogin() {
  location.hash = "#/login";
}

async function route() {
  if (unmount) {
    unmount();
    unmount = null;
  }
  header();
  const [page, ...rest] = (location.hash.slice(2) || "markets").split("/");
  const arg = decodeURIComponent(rest.join("/"));
  switch (page) {
    case "login":
    case "signup":
      if (session.user) {
        location.hash = "#/account";
        return;
      }
      unmount = authPage(page);
      return;
    case "market":
      unmount = market.mount(root, arg);
      return;
    case "account":
      if (!session.user) return needLogin();
      unmount = account.mount(root);
      return;
    case "keys":
      if (!session.user) return needLogin();
      unmount = keys.mount(root);
      return;
    default:
      unmount = markets.mount(root);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("ballast:session", () => {
  if (["account", "keys"].includes(location.hash.slice(2).split("/")[0])) needLogin();
  else route();
});

await loadSession();
route();

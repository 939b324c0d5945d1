// API keys of the signed-in user's account: create (the secret is shown once), list, revoke.

import { api, copyText, fill, fmtTime, h, notice, panel, table } from "./lib.js";

export function mount(root) {
  document.title = "API keys · Ballast";
  const message = h("p", { class: "notice", id: "keys-message" });
  const label = h("input", { id: "key-label", maxlength: 64, placeholder: "e.g. quoting bot", required: true });
  const read = h("input", { type: "checkbox", id: "scope-read", checked: true });
  const trade = h("input", { type: "checkbox", id: "scope-trade", checked: true });
  const create = h("button", { type: "submit", class: "btn primary", id: "key-create" }, "Create key");
  const reveal = h("div", { id: "key-reveal" });
  const list = h("div", { id: "keys-list" }, h("p", { class: "muted pad" }, "Loading…"));

  const form = h(
    "form",
    { class: "inline-form", id: "key-form" },
    h("label", {}, "Label ", label),
    h("span", { class: "scopes" }, "Scopes ", h("label", {}, read, " read"), h("label", {}, trade, " trade")),
    create,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const scopes = [read.checked && "read", trade.checked && "trade"].filter(Boolean);
    if (!scopes.length) {
      notice(message, "Choose at least one scope", "error");
      return;
    }
    create.disabled = true;
    try {
      const key = await api("/dashboard/api/keys", { method: "POST", body: { label: label.value.trim(), scopes } });
      notice(message, "");
      label.value = "";
      showSecret(key);
      load();
    } catch (error) {
      notice(message, `${error.code}: ${error.message}`, "error");
    } finally {
      create.disabled = false;
    }
  });

  fill(
    root,
    h("div", { class: "account-head" }, h("h1", {}, "API keys"), h("span", { class: "muted" }, "Sign requests with a key and its secret: see the API docs at "), h("a", { href: "/docs" }, "/docs")),
    panel("New key", null, form, message, reveal),
    panel("Keys", null, list),
  );

  function showSecret(key) {
    const field = (id, value) => {
      const input = h("input", { id, value, readonly: true, class: "mono secret", spellcheck: "false" });
      const copy = h("button", { type: "button", class: "btn small copy", dataset: { copy: id } }, "Copy");
      copy.addEventListener("click", async () => {
        const ok = await copyText(value, input);
        copy.textContent = ok ? "Copied" : "Select and copy";
      });
      return [input, copy];
    };
    fill(
      reveal,
      h(
        "div",
        { class: "reveal" },
        h("p", { class: "warn" }, "Copy the secret now: it is shown this once and cannot be recovered. Revoke the key if it leaks."),
        h("div", { class: "kv" }, h("span", {}, "API key"), ...field("new-key", key.api_key)),
        h("div", { class: "kv" }, h("span", {}, "API secret"), ...field("new-secret", key.api_secret)),
        h("div", { class: "kv" }, h("span", {}, "Scopes"), h("span", { class: "mono" }, key.scopes.join(", "))),
        h("button", { type: "button", class: "btn small", id: "reveal-done", onclick: () => fill(reveal) }, "I have stored it"),
      ),
    );
  }

  async function load() {
    try {
      const data = await api("/dashboard/api/keys");
      render(data.keys);
    } catch (error) {
      notice(message, error.message, "error");
    }
  }

  function render(keys) {
    const rows = keys.map((k) => {
      const revoked = Boolean(k.revoked_at);
      let armed = false;
      const revoke = h("button", { class: "btn tiny danger revoke", disabled: revoked }, revoked ? "Revoked" : "Revoke");
      revoke.addEventListener("click", async () => {
        if (!armed) {
          armed = true;
          revoke.textContent = "Confirm revoke";
          revoke.classList.add("armed");
          setTimeout(() => {
            if (armed && revoke.isConnected) {
              armed = false;
              revoke.textContent = "Revoke";
              revoke.classList.remove("armed");
            }
          }, 5_000);
          return;
        }
        revoke.disabled = true;
        try {
          await api(`/dashboard/api/keys/${encodeURIComponent(k.api_key)}`, { method: "DELETE" });
          notice(message, `Revoked ${k.api_key}`, "ok");
        } catch (error) {
          notice(message, `${error.code}: ${error.message}`, "error");
        }
        load();
      });
      return h(
        "tr",
        { class: `key-row ${revoked ? "revoked" : ""}`, dataset: { key: k.api_key } },
        h("td", { class: "mono" }, k.api_key),
        h("td", {}, k.label || "—"),
        h("td", {}, k.scopes.join(", ")),
        h("td", { class: "mono" }, fmtTime(k.created_at)),
        h("td", { class: "mono last-used" }, k.last_used_at ? fmtTime(k.last_used_at) : "never"),
        h("td", { class: "key-status" }, revoked ? h("span", { class: "status s-canceled" }, `revoked ${fmtTime(k.revoked_at)}`) : h("span", { class: "status s-open" }, "active")),
        h("td", {}, revoke),
      );
    });
    fill(
      list,
      table(
        [{ label: "Key" }, { label: "Label" }, { label: "Scopes" }, { label: "Created (UTC)" }, { label: "Last used (UTC)" }, { label: "Status" }, { label: "" }],
        rows,
        { empty: "No keys yet: create one above" },
      ),
    );
  }

  load();
  return null;
}

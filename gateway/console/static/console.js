// The console's only script (served from this origin; the page's CSP allows no other). It runs the WebAuthn
// ceremonies the server prepares: enrolment, sign-in, and the signed approval of the selected payments.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : null;

  async function post(url, body) {
    const headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const answer = await fetch(url, { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin" });
    let data = {};
    try { data = await answer.json(); } catch (e) { /* no JSON body */ }
    if (!answer.ok) throw new Error((data.code ? data.code + ": " : "") + (data.detail || answer.statusText));
    return data;
  }

  function say(form, text, kind) {
    const status = form.querySelector(".status");
    status.textContent = text;
    status.dataset.kind = kind || "";
  }

  async function sign(options) {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    return (await navigator.credentials.get({ publicKey })).toJSON();
  }

  const enrol = document.getElementById("enrol-form");
  if (enrol) enrol.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(enrol, enrol.dataset.working);
    try {
      const begun = await post(enrol.action + "/options", {});
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(begun.options);
      const made = await navigator.credentials.create({ publicKey });
      await post(enrol.action + "/finish", { handle: begun.handle, credential: made.toJSON() });
      say(enrol, enrol.dataset.done, "ok");
      enrol.querySelector("button").disabled = true;
      document.getElementById("signin-link").hidden = false;
    } catch (e) { say(enrol, e.message, "error"); }
  });

  const signin = document.getElementById("signin-form");
  if (signin) signin.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(signin, signin.dataset.working);
    try {
      const who = { client: signin.client.value.trim(), operator: signin.operator.value.trim() };
      const begun = await post(signin.action + "/options", who);
      const done = await post(signin.action + "/finish", { handle: begun.handle, credential: await sign(begun.options) });
      window.location.assign(done.next);
    } catch (e) { say(signin, e.message, "error"); }
  });

  const inbox = document.getElementById("inbox-form");
  if (inbox) inbox.addEventListener("submit", async (event) => {
    event.preventDefault();
    const decision = event.submitter ? event.submitter.value : "APPROVE";
    const items = Array.from(inbox.querySelectorAll('input[name="payment"]:checked'))
      .map((box) => ({ payment_id: box.value, order_digest: box.dataset.digest }));
    const results = document.getElementById("results");
    results.replaceChildren();
    if (!items.length) { say(inbox, inbox.dataset.none, "error"); return; }
    say(inbox, inbox.dataset.working);
    try {
      const begun = await post("/console/approvals/options", { decision, items, comment: inbox.comment.value });
      const done = await post("/console/approvals/decide", { handle: begun.handle, credential: await sign(begun.options) });
      say(inbox, done.ok ? inbox.dataset.ok : inbox.dataset.refused, done.ok ? "ok" : "error");
      for (const o of done.outcomes) {
        const line = document.createElement("li");
        line.textContent = o.payment_id + ": " + (o.applied ? o.state : (o.code || "-") + (o.detail ? " (" + o.detail + ")" : ""));
        line.dataset.kind = o.applied ? "ok" : "error";
        results.append(line);
        if (o.applied) {
          const row = document.getElementById("row-" + o.payment_id);
          if (row) { row.classList.add("done"); row.querySelector("input").disabled = true; }
        }
      }
    } catch (e) { say(inbox, e.message, "error"); }
  });
})();

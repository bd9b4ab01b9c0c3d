// Mailbox form: propose the standard port when the protocol or security changes, and show only
// the fields that apply. Everything still works without this file.
(function () {
  "use strict";
  const form = document.getElementById("mailbox-form");
  const table = JSON.parse(document.getElementById("default-ports").textContent);
  const byId = (id) => document.getElementById(id);
  const standardPorts = new Set(Object.values(table).map(String));

  function propose(portField, key) {
    const port = table[key];
    if (port && (portField.value === "" || standardPorts.has(portField.value))) {
      portField.value = String(port);
    }
  }
  function incoming() {
    propose(byId("id_incoming_port"), byId("id_protocol").value + "-" + byId("id_incoming_security").value);
  }
  function outgoing() {
    propose(byId("id_smtp_port"), "smtp-" + byId("id_smtp_security").value);
  }
  function visibility() {
    const protocol = byId("id_protocol").value;
    form.querySelectorAll("[data-protocol]").forEach((block) => {
      block.hidden = block.dataset.protocol !== protocol;
    });
    form.querySelector("[data-smtp-login]").hidden = byId("id_smtp_same_login").checked;
    // The days matter only to "delete after some days" (a field with an error stays in sight).
    const days = form.querySelector("[data-retention-days]");
    days.hidden = byId("id_pop3_retention").value !== "days" && !days.querySelector(".has-error");
  }
  byId("id_protocol").addEventListener("change", () => { incoming(); visibility(); });
  byId("id_incoming_security").addEventListener("change", incoming);
  byId("id_smtp_security").addEventListener("change", outgoing);
  byId("id_smtp_same_login").addEventListener("change", visibility);
  byId("id_pop3_retention").addEventListener("change", visibility);
  visibility();
})();

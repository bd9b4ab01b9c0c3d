// The compose page saves its draft by itself: a few seconds after typing stops, and when the
// page is left. The first save creates the draft; the address bar then points at it, so a
// reload comes back to it. Attachments are saved with the buttons, not here.
(function () {
  "use strict";
  const form = document.querySelector("[data-autosave-url]");
  if (!form) return;
  const discard = document.querySelector("[data-discard]");
  let timer = null;
  let dirty = false;
  let saving = null;  // the save on its way, which a discard waits for (the first one makes the draft)

  function fields() {
    const data = new FormData(form);
    data.delete("attachments");
    data.set("action", "autosave");
    return data;
  }

  function save() {
    if (!dirty) return;
    dirty = false;
    saving = fetch(form.dataset.autosaveUrl, { method: "POST", body: fields(), credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((saved) => {
        if (!saved) return;
        form.dataset.autosaveUrl = saved.autosave_url;
        form.setAttribute("action", saved.edit_url);
        if (discard) discard.setAttribute("action", saved.discard_url);
        history.replaceState(null, "", saved.edit_url);
        document.documentElement.dataset.draftSaved = saved.id;
      })
      .catch(() => { dirty = true; })
      .finally(() => { saving = null; });
  }

  form.addEventListener("input", () => {
    dirty = true;
    clearTimeout(timer);
    timer = setTimeout(save, Number(form.dataset.autosaveDelay || 3000));
  });
  const saveOnLeaving = () => {
    if (dirty) {
      dirty = false;
      navigator.sendBeacon(form.dataset.autosaveUrl, fields());
    }
  };
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") saveOnLeaving(); });
  window.addEventListener("pagehide", saveOnLeaving);
  form.addEventListener("submit", () => { clearTimeout(timer); dirty = false; });
  // Discarding saves nothing more, and waits for a save on its way, so that it discards that draft.
  if (discard) {
    discard.addEventListener("submit", (event) => {
      clearTimeout(timer);
      dirty = false;
      if (saving) {
        event.preventDefault();
        saving.then(() => discard.submit());
      }
    });
  }
}());

// Address suggestions under To, Cc and Bcc: people already written to or heard from, most
// frequent first. Choosing one replaces the address being typed (the part after the last comma).
(function () {
  "use strict";
  const form = document.querySelector("[data-suggest-url]");
  if (!form) return;
  const url = form.dataset.suggestUrl;
  ["id_to", "id_cc", "id_bcc"].forEach((id) => {
    const input = document.getElementById(id);
    if (!input) return;
    const list = document.createElement("ul");
    list.className = "suggestions";
    list.dataset.testid = "suggestions";
    list.hidden = true;
    input.after(list);
    let timer = null;
    const typed = () => input.value.split(",").pop().trim();
    const choose = (text) => {
      const parts = input.value.split(",");
      parts[parts.length - 1] = (parts.length > 1 ? " " : "") + text;
      input.value = parts.join(",") + ", ";
      list.hidden = true;
      input.focus();
      input.dispatchEvent(new Event("input", { bubbles: true }));
    };
    input.addEventListener("input", () => {
      clearTimeout(timer);
      const term = typed();
      if (term.length < 2) { list.hidden = true; return; }
      timer = setTimeout(() => {
        fetch(`${url}?q=${encodeURIComponent(term)}`, { credentials: "same-origin" })
          .then((response) => (response.ok ? response.json() : { suggestions: [] }))
          .then(({ suggestions }) => {
            list.replaceChildren(...suggestions.map((text) => {
              const item = document.createElement("li");
              const button = document.createElement("button");
              button.type = "button";
              button.textContent = text;  // text, never markup: names come from mail
              button.addEventListener("click", () => choose(text));
              item.append(button);
              return item;
            }));
            list.hidden = suggestions.length === 0;
          })
          .catch(() => { list.hidden = true; });
      }, 200);
    });
  });
}());

// Rich text: a vetted editor (Trix, vendored) instead of the plain text box, when asked for.
// The server sanitises what it produces like received mail; without JavaScript, plain text.
(function () {
  "use strict";
  const toggle = document.querySelector(".rich-toggle");
  const editor = document.querySelector("trix-editor");
  const plain = document.getElementById("id_text");
  if (!toggle || !editor || !plain) return;
  const box = toggle.querySelector("input");
  toggle.hidden = false;
  const show = () => {
    editor.hidden = !box.checked;
    const toolbar = document.querySelector("trix-toolbar");
    if (toolbar) toolbar.hidden = !box.checked;
    plain.hidden = box.checked;
    if (box.checked && !document.getElementById("id_html").value && plain.value && editor.editor) {
      editor.editor.insertString(plain.value);
    }
  };
  box.addEventListener("change", show);
  document.addEventListener("trix-initialize", show);
  document.addEventListener("trix-file-accept", (event) => event.preventDefault());  // files go in Attachments
}());

// Attachments upload with a progress bar; the page then goes where the server sends it. Should
// the server answer with the form again (a mistake to fix), the browser submits it the usual way.
// A selection over the limit is refused here, before a byte of it leaves, and so is an upload the
// server refused for its size (413): submitting it again would only send it all a second time.
(function () {
  "use strict";
  const form = document.querySelector("[data-autosave-url]");
  const files = document.getElementById("id_attachments");
  const bar = document.querySelector("[data-upload-progress]");
  const tooLarge = document.querySelector("[data-upload-error]");
  if (!form || !files || !bar || !window.XMLHttpRequest) return;
  const limit = Number(bar.dataset.maxMb || 0) * 1024 * 1024;
  const refuse = () => { bar.hidden = true; if (tooLarge) tooLarge.hidden = false; };
  form.addEventListener("submit", (event) => {
    if (!files.files.length) return;
    event.preventDefault();
    const total = Array.from(files.files).reduce((sum, file) => sum + file.size, 0);
    if (limit && total > limit) { refuse(); return; }
    if (tooLarge) tooLarge.hidden = true;
    const request = new XMLHttpRequest();
    request.open("POST", form.getAttribute("action"));
    bar.hidden = false;
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) bar.value = Math.round((100 * progress.loaded) / progress.total);
    });
    request.addEventListener("load", () => {
      const landed = request.responseURL && request.responseURL !== new URL(form.action, location.href).href;
      if (request.status === 413) refuse();
      else if (landed && request.status < 400) location.assign(request.responseURL);
      else form.submit();
    });
    request.addEventListener("error", () => form.submit());
    request.send(new FormData(form, event.submitter));
  });
}());

// The signature shown under the body is the chosen mailbox's: it follows the "From" choice. It is
// never put into the body; sending adds it, once.
(function () {
  "use strict";
  const from = document.getElementById("id_mailbox");
  const section = document.querySelector("[data-testid=signature]");
  const data = document.getElementById("signatures");
  if (!from || !section || !data) return;
  const signatures = JSON.parse(data.textContent);
  const text = section.querySelector("[data-signature-text]");
  const show = () => {
    const signature = signatures[from.value] || "";
    text.textContent = signature;  // text, never markup
    section.hidden = !signature;
  };
  from.addEventListener("change", show);
  show();
}());

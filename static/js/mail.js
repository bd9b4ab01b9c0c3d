// Mail list and message pages: keyboard shortcuts, choosing rows, marking read on open, new mail.
// Everything here has a no-JavaScript equivalent (links, buttons, forms); this only adds speed.
(function () {
  "use strict";

  const rows = () => Array.from(document.querySelectorAll("[data-testid=message-row]"));
  let current = -1;

  function focusRow(index) {
    const all = rows();
    if (!all.length) return;
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("current", i === current));
    all[current].scrollIntoView({ block: "nearest" });
  }

  function currentRow() {
    return rows()[current] || null;
  }

  function submitAction(action) {
    const row = currentRow();
    const form = document.getElementById("list-form");
    if (row && form) {
      form.querySelectorAll("input[name=message]").forEach((box) => { box.checked = false; });
      row.querySelector("input[name=message]").checked = true;
      const button = form.querySelector(`button[name=action][value=${action}]`);
      if (button) actInPlace(form, button);
      return;
    }
    const single = document.querySelector(`[data-shortcut=${action}]`);
    if (single) single.click();
  }

  // An action from the keyboard or a row's star is sent in the background and the list is brought
  // up to date where it stands, so the j/k position stays (the form alone would load the page again).
  function actInPlace(form, submitter) {
    const body = new FormData(form, submitter);
    fetch(form.getAttribute("action"), { method: "POST", body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html");
        ["[data-testid=messages]", ".sidebar"].forEach((selector) => {
          const now = document.querySelector(selector);
          const then = fresh.querySelector(selector);
          if (now && then) now.replaceWith(then);
        });
        const main = document.getElementById("main");
        const notices = fresh.querySelector("[data-testid=notices]");
        const old = document.querySelector("[data-testid=notices]");
        if (old) old.remove();
        if (main && notices) main.prepend(notices);
        if (window.htmx) window.htmx.process(document.body);
        if (current >= 0) focusRow(current);
        document.documentElement.dataset.acted = String(Number(document.documentElement.dataset.acted || 0) + 1);
      })
      .catch(() => location.reload());  // whatever happened, the page shows it as it now is
  }

  // A row's star stars that message alone (its own form), in place.
  document.addEventListener("click", (event) => {
    const star = event.target instanceof Element ? event.target.closest("button.star[form]") : null;
    const form = star ? document.getElementById(star.getAttribute("form")) : null;
    if (form) {
      event.preventDefault();
      actInPlace(form, star);
    }
  });

  function follow(name) {
    const link = document.querySelector(`[data-shortcut=${name}]`);
    if (link) link.click();
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const key = event.key;
    // Enter on a focused link, button or summary is that control's own (the skip link, a star, a menu).
    // Not the Close button of the shortcuts just closed: focus stays on it, hidden, for a moment.
    const control = target instanceof HTMLElement && target.closest("a, button, summary") && !target.closest("dialog:not([open])");
    if (key === "Enter" && control) return;
    const actions = {
      j: () => focusRow(current + 1),
      k: () => focusRow(current - 1),
      o: () => { const row = currentRow(); if (row) row.querySelector("a.row-link").click(); },
      Enter: () => { const row = currentRow(); if (row) row.querySelector("a.row-link").click(); },
      u: () => { const back = document.querySelector("[data-shortcut=back]"); if (back) back.click(); },
      x: () => { const row = currentRow(); if (row) { const box = row.querySelector("input[name=message]"); box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); } },
      s: () => submitAction(currentRow() && currentRow().querySelector(".star.on") ? "unstar" : "star"),
      e: () => submitAction("archive"),
      "#": () => submitAction("delete"),
      c: () => follow("compose"),
      r: () => follow("reply"),
      a: () => follow("reply-all"),
      f: () => follow("forward"),
      "/": () => { const box = document.querySelector("[data-shortcut=search]"); if (box) box.focus(); },
      "?": () => { const help = document.getElementById("shortcuts"); if (help) help.showModal(); },
    };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  });

  // "Choose all" in the list toolbar (listened for on the document: the reading pane's page brings its list later).
  document.addEventListener("change", (event) => {
    const all = event.target instanceof Element ? event.target.closest("[data-select-all]") : null;
    if (all) document.querySelectorAll("input[name=message]").forEach((box) => { box.checked = all.checked; });
  });

  // "Move to" offers only what can happen: a folder takes its own mailbox's messages, so the groups of
  // mailboxes none of the chosen rows is in are disabled (rows of several mailboxes leave the roles,
  // which each message takes in its own mailbox). The server refuses any other move and says why.
  document.addEventListener("change", (event) => {
    const moveMenu = document.querySelector("#list-form [data-move-menu]");
    if (!moveMenu || !(event.target instanceof Element) || !event.target.closest("#list-form")) return;
    const chosen = new Set(Array.from(document.querySelectorAll("[data-testid=message-row]"))
      .filter((row) => row.querySelector("input[name=message]:checked"))
      .map((row) => row.dataset.mailbox));
    moveMenu.querySelectorAll("optgroup[data-mailbox]").forEach((group) => {
      group.disabled = chosen.size > 0 && !(chosen.size === 1 && chosen.has(group.dataset.mailbox));
    });
    const picked = moveMenu.selectedOptions[0];
    if (picked && picked.parentElement.disabled) moveMenu.value = "";
  });

  // Opening an unread message marks it read, by POST (no GET ever changes anything): on the message
  // page, and each time the reading pane shows one. Its row in the list beside it is read too.
  function markReadOnOpen(root) {
    const markRead = root.querySelector("[data-mark-read]");
    const unseen = Array.from(root.querySelectorAll("[data-unseen]")).map((mail) => mail.dataset.unseen);
    const form = root.querySelector("#message-actions");
    if (!form || !unseen.length) return;
    const body = new FormData(form);
    body.set("action", "read");
    unseen.forEach((id) => body.append("message", id));  // every unread one shown open
    body.set("notice", "0");  // not an action the person took: no notice
    fetch(form.getAttribute("action"), { method: "POST", body, headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin", redirect: "manual" })
      .then(() => {
        if (markRead) markRead.hidden = true;
        unseen.forEach((id) => {
          const row = document.querySelector(`[data-testid=message-row][data-message="${id}"]`);
          if (!row) return;
          row.classList.remove("unread");
          const said = row.querySelector(".row-link > .visually-hidden");  // "Unread:" for a screen reader
          if (said) said.remove();
        });
        document.documentElement.dataset.markedRead = String(Number(document.documentElement.dataset.markedRead || 0) + 1);
      });
  }

  // A conversation starts at its newest unread message (or the one the link named), not at its top.
  function scrollToFocus(root) {
    const focus = root.querySelector(".conversation .mail.focus");
    if (focus && focus !== root.querySelector(".conversation .mail")) focus.scrollIntoView({ block: "start" });
  }

  markReadOnOpen(document);
  scrollToFocus(document);

  // The reading pane: on a wide screen a row opens beside the list, without a page load, and its
  // address goes into the history (Back shows the one before). A phone, or no htmx, follows the link.
  const layout = document.querySelector("[data-pane-layout]");
  const wide = window.matchMedia("(min-width: 900px)");

  function showOpenRow() {
    rows().forEach((row, i) => {
      const link = row.querySelector("a.row-link");
      const open = Boolean(link) && new URL(link.href, location.href).pathname === location.pathname;
      row.classList.toggle("open", open);
      if (open) focusRow(i);
    });
  }

  function openInPane(url) {
    return window.htmx.ajax("GET", url, { target: "#pane", swap: "innerHTML" }).then(showOpenRow);
  }

  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a.row-link") : null;
    if (!layout || !link || !wide.matches || !window.htmx || !document.getElementById("pane")) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    if (!link.closest("[data-message]")) return;  // a draft opens in compose
    event.preventDefault();
    history.pushState({ pane: link.href }, "", link.href);
    openInPane(link.href);
  });

  window.addEventListener("popstate", () => {
    const pane = document.getElementById("pane");
    if (!layout || !pane || !window.htmx) return;
    const here = location.pathname + location.search;
    if (here === layout.dataset.listUrl) {
      pane.innerHTML = "";
      showOpenRow();
    } else {
      openInPane(location.href);
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail && event.detail.target;
    if (target && target.id === "pane") {
      markReadOnOpen(target);
      scrollToFocus(target);
      target.scrollTop = 0;
    }
    else if (layout) showOpenRow();  // the list the message page brings beside it
  });

  // New mail: poll the unread count; show a notice and the count in the tab title.
  const notice = document.querySelector("[data-unread-url]");
  if (notice) {
    let known = Number(notice.dataset.unread || 0);
    const poll = () => fetch(notice.dataset.unreadUrl, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((text) => {
        if (text === null) return;
        const unread = Number(text);
        document.title = (unread ? `(${unread}) ` : "") + notice.dataset.title;
        if (unread > known) showNewMail();
        known = unread;
      })
      .catch(() => {});
    // New rows come in by themselves while nothing is chosen on the first page; otherwise a
    // notice offers them, so a selection in progress is never swept away.
    const showNewMail = () => {
      const chosen = document.querySelector("input[name=message]:checked");
      if (chosen || new URLSearchParams(location.search).has("after") || !window.htmx) {
        notice.hidden = false;
        return;
      }
      window.htmx.ajax("GET", location.href, { target: "[data-testid=messages]", select: "[data-testid=messages]", swap: "outerHTML" });
    };
    setInterval(poll, Number(notice.dataset.interval || 30000));
    notice.addEventListener("poll", poll);
  }
}());

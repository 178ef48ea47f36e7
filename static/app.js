// Progressive enhancement only: every action works without this file (plain form posts).
"use strict";

// Show times in the viewer's local time zone, with "12 min ago".
function relative(date) {
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  const days = Math.floor(s / 86400);
  return days === 1 ? "1 day ago" : days + " days ago";
}

function localTimes() {
  for (const el of document.querySelectorAll("time[datetime]")) {
    const d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) continue;
    el.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) +
      " (" + relative(d) + ")";
    el.title = el.getAttribute("datetime");
  }
}

// Sizes as the server writes them (powers of 1000).
function humanBytes(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + " GB";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
  if (n >= 1e3) return Math.round(n / 1e3) + " kB";
  return n + " bytes";
}

function hasFiles(e) {
  return !!e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
}

// The upload form: drag and drop, then a progress bar with percent and bytes while sending,
// then "checking and unpacking", then the new release's page (which has the Go live button).
// Without this script the form posts as it is and the server answers with the same pages.
function enhanceUpload(form) {
  const input = form.querySelector("#archive");
  const zone = form.querySelector("#dropzone");
  const hint = form.querySelector("#drop-hint");
  const button = form.querySelector("#upload-button");
  const box = form.querySelector("#upload-status");
  const phase = form.querySelector("#upload-phase");
  const bar = form.querySelector("#upload-bar");
  const bytes = form.querySelector("#upload-bytes");
  const errorBox = form.querySelector("#upload-error");
  const max = Number(form.dataset.maxBytes) || Infinity;
  let busy = false;

  const setState = (state) => { form.dataset.uploadState = state; };
  const clearError = () => { errorBox.hidden = true; errorBox.textContent = ""; };
  const showError = (title, message, advice) => {
    errorBox.textContent = "";
    for (const [text, strong] of [[title, true], [message, false], [advice, false]]) {
      if (!text) continue;
      const p = document.createElement("p");
      if (strong) {
        const b = document.createElement("strong");
        b.textContent = text;
        p.appendChild(b);
      } else {
        p.textContent = text;
      }
      errorBox.appendChild(p);
    }
    errorBox.hidden = false;
  };
  const tooLarge = (file) => file.size > max;
  const refuseTooLarge = (file) => showError(
    "This file is too large.",
    file.name + " is " + humanBytes(file.size) + "; the limit is " + (form.dataset.maxText || humanBytes(max)) + ".",
    "Make the archive smaller (leave out files the site does not need) or ask an admin to raise the limit.");

  // Dragging a file needs a mouse: say so only where one is likely.
  if (hint && window.matchMedia("(pointer: fine)").matches) hint.hidden = false;
  let depth = 0;
  form.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  form.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = busy ? "none" : "copy";
  });
  form.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("dragging");
  });
  form.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (busy) return;
    const files = e.dataTransfer.files;
    if (files.length !== 1) {
      showError("Drop one archive at a time.", "", "");
      return;
    }
    input.files = files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
  // A file dropped next to the box would make the browser leave the page: ignore it.
  window.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener("drop", (e) => { if (hasFiles(e)) e.preventDefault(); });

  input.addEventListener("change", () => {
    clearError();
    const file = input.files[0];
    if (!file) return;
    if (tooLarge(file)) refuseTooLarge(file);
  });

  const leaveWarning = (e) => { e.preventDefault(); e.returnValue = ""; };

  const fail = (status, body) => {
    busy = false;
    window.removeEventListener("beforeunload", leaveWarning);
    setState("failed");
    box.hidden = true;
    button.disabled = false;
    const message = body && body.error && body.error.message;
    if (status === 401) {
      showError("Your session has ended.", "", "Reload the page, log in again, then upload the archive again.");
    } else if (status === 413 || status === 422) {
      showError("The archive was refused.", message || "", message ? "" : "Check the archive and upload it again.");
    } else if (status === 507) {
      showError("The server's disk is full.", message || "", "Nothing was changed. Ask an administrator to free some space, then upload again.");
    } else if (status === 0) {
      showError("The upload did not finish.", "The connection broke while sending the file.", "Check your network, then upload again.");
    } else {
      showError("The upload did not work.", message || "The console answered with an error (" + status + ").",
        "Reload the page and try again; if it keeps happening, tell your administrator.");
    }
    errorBox.focus();
  };

  form.addEventListener("submit", (e) => {
    if (!window.FormData || !window.XMLHttpRequest) return;
    const file = input.files[0];
    if (!file) return;
    e.preventDefault();
    if (busy) return;
    clearError();
    if (tooLarge(file)) {
      refuseTooLarge(file);
      return;
    }
    busy = true;
    const data = new FormData(form); // csrf_token comes first, as the server wants
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", form.elements.csrf_token.value);

    setState("sending");
    button.disabled = true;
    box.hidden = false;
    bar.value = 0;
    bar.textContent = "0%";
    // The phase line is a live region: it changes only when the phase does. Percent and
    // bytes go beside the bar, which assistive technology reads on demand.
    phase.textContent = "Sending " + file.name + "…";
    bytes.textContent = "0% · 0 bytes of " + humanBytes(file.size);
    form.dataset.progressShown = "yes";
    window.addEventListener("beforeunload", leaveWarning);

    xhr.upload.addEventListener("progress", (ev) => {
      if (!ev.lengthComputable || ev.total === 0) return;
      const pct = Math.min(100, Math.floor((ev.loaded * 100) / ev.total));
      bar.value = pct;
      bar.textContent = pct + "%";
      bytes.textContent = pct + "% · " + humanBytes(ev.loaded) + " of " + humanBytes(ev.total);
      form.dataset.progressPercent = String(pct);
    });
    xhr.upload.addEventListener("load", () => {
      setState("checking");
      bar.removeAttribute("value"); // indeterminate: the server is working
      bar.textContent = "";
      phase.textContent = "Sent. Checking and unpacking the archive…";
      bytes.textContent = humanBytes(file.size) + " received. Big releases take a moment.";
    });
    xhr.addEventListener("load", () => {
      let body = null;
      if ((xhr.getResponseHeader("Content-Type") || "").includes("application/json")) {
        try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
      }
      if (xhr.status >= 200 && xhr.status < 300 && body && body.url) {
        busy = false;
        window.removeEventListener("beforeunload", leaveWarning);
        setState("done");
        bar.value = 100;
        phase.textContent = "Release " + body.id + " is checked and ready. Opening it…";
        bytes.textContent = "";
        window.location.assign(body.url);
        return;
      }
      fail(xhr.status, body);
    });
    xhr.addEventListener("error", () => fail(0, null));
    xhr.addEventListener("abort", () => fail(0, null));
    xhr.send(data);
  });
}

// Forms that switch a site (go live, roll back): one press only, and say that it is working.
function busyOnSubmit(form) {
  form.addEventListener("submit", () => {
    const button = form.querySelector("button[type=submit]");
    if (!button) return;
    // Disabled after this turn, so the post itself goes ahead.
    setTimeout(() => {
      button.disabled = true;
      button.textContent = form.dataset.busy;
    }, 0);
  });
}

// A switch that runs the site's commands: its page polls the progress and shows each step as
// it ends and the running command's output as it arrives, then reloads into the result.
// Without this script the page reloads itself (a <noscript> refresh).
function followRun(box) {
  const list = document.getElementById("run-steps");
  const now = document.getElementById("run-now");
  const nowStep = document.getElementById("run-now-step");
  const nowSeconds = document.getElementById("run-now-seconds");
  const out = document.getElementById("run-output");
  let shown = list.children.length;
  const item = (s) => {
    const li = document.createElement("li");
    const div = document.createElement("div");
    const badge = document.createElement("span");
    badge.className = "badge " + (s.ok ? "good" : "bad");
    badge.textContent = s.ok ? "ok" : "failed";
    const name = document.createElement("strong");
    name.textContent = s.step;
    const took = document.createElement("span");
    took.className = "muted duration";
    took.textContent = s.ms < 1000 ? s.ms + " ms" : (s.ms / 1000).toFixed(1) + " s";
    div.append(badge, " ", name, " ", took);
    if (s.detail) {
      const pre = document.createElement("pre");
      pre.className = "output";
      pre.textContent = s.detail;
      div.append(pre);
    }
    li.append(div);
    return li;
  };
  const tick = async () => {
    let snap;
    try {
      const res = await fetch(box.dataset.progress, { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) { window.location.reload(); return; }
      snap = await res.json();
    } catch (e) {
      setTimeout(tick, 2000);
      return;
    }
    if (snap.done) { window.location.reload(); return; }
    for (const s of snap.steps.slice(shown)) list.append(item(s));
    shown = snap.steps.length;
    if (snap.running) {
      now.hidden = false;
      nowStep.textContent = snap.running.step;
      nowSeconds.textContent = snap.running.seconds + " s";
      const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      out.textContent = snap.running.output;
      if (atEnd) out.scrollTop = out.scrollHeight;
    } else {
      now.hidden = true;
    }
    setTimeout(tick, 700);
  };
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run");
  if (run && run.dataset.progress) followRun(run);
  localTimes();
  setInterval(localTimes, 60 * 1000);
  // Ask before irreversible actions whose form carries data-confirm.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
  for (const form of document.querySelectorAll("form[data-busy]")) busyOnSubmit(form);
  const upload = document.getElementById("upload-form");
  if (upload) enhanceUpload(upload);
  // "Copy" next to a password or token shown once (the field itself is selectable too).
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    if (!field) continue;
    button.hidden = false;
    button.addEventListener("click", () => {
      field.select();
      const done = () => { button.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, () => {});
      else if (document.execCommand("copy")) done();
    });
  }
  // The audit filters fold away on phones (they take a screenful); wide screens show them.
  const filters = document.getElementById("audit-filters");
  if (filters && window.matchMedia("(min-width: 48rem)").matches) filters.open = true;
});

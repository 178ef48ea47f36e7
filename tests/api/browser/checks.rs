//! What every page must satisfy, measured in the browser: no horizontal scrolling, touch
//! targets of at least 44 px, readable text, labelled inputs, one h1, AA contrast.

use fantoccini::Client;
use serde_json::Value;

/// Returns a list of problems (empty when the page is fine).
const AUDIT: &str = r##"
const problems = [];
const vw = window.innerWidth;
const de = document.documentElement;
if (de.scrollWidth > vw) problems.push(`scrolls sideways: scrollWidth ${de.scrollWidth} > innerWidth ${vw}`);
const visible = (el) => {
  // Inside a closed <details>, for one: laid out, but not shown.
  if (el.checkVisibility && !el.checkVisibility()) return false;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  const s = getComputedStyle(el);
  return s.visibility !== "hidden" && s.display !== "none" && !el.closest(".visually-hidden");
};
const describe = (el) => (el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " “" +
  (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40) + "”");

// Nothing sticks out of the viewport on the right.
for (const el of document.querySelectorAll("body *")) {
  if (!visible(el)) continue;
  const r = el.getBoundingClientRect();
  if (r.right > vw + 1 && !el.closest("pre")) { problems.push(`wider than the screen: ${describe(el)} right=${Math.round(r.right)}`); break; }
}

// Touch targets: controls and stand-alone links (links inside running text are exempt).
const targets = "button, a.button, a.tap, .back a, nav a, input:not([type=hidden]):not([type=radio]):not([type=checkbox]), select, textarea, label.choice, summary, .skip:focus";
for (const el of document.querySelectorAll(targets)) {
  if (!visible(el)) continue;
  const r = el.getBoundingClientRect();
  if (r.height < 43.5 || r.width < 43.5) problems.push(`small touch target ${Math.round(r.width)}x${Math.round(r.height)}: ${describe(el)}`);
}

// Readable without zooming: no visible text under 14 px.
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
while (walker.nextNode()) {
  const t = walker.currentNode;
  if (!t.textContent.trim()) continue;
  const el = t.parentElement;
  if (!el || seen.has(el) || !visible(el) || el.closest("option, select")) continue;
  seen.add(el);
  const s = getComputedStyle(el);
  const size = parseFloat(s.fontSize);
  if (size < 14) problems.push(`text of ${size}px: ${describe(el)}`);
  // Contrast (WCAG AA): 4.5:1, or 3:1 for large text.
  if (el.closest(":disabled")) continue;
  const fg = parse(s.color);
  const bg = background(el);
  const c = blend(fg, bg);
  const ratio = contrast(c, bg);
  const large = size >= 24 || (size >= 18.66 && parseInt(s.fontWeight, 10) >= 700);
  if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}:1: ${describe(el)}`);
}
function parse(c) {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return { r: 0, g: 0, b: 0, a: 1 };
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
}
function blend(top, under) {
  const a = top.a;
  return { r: top.r * a + under.r * (1 - a), g: top.g * a + under.g * (1 - a), b: top.b * a + under.b * (1 - a), a: 1 };
}
function background(el) {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  let base = { r: 255, g: 255, b: 255, a: 1 };
  for (const l of layers.reverse()) base = blend(l, base);
  return base;
}
function lum(c) {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function contrast(a, b) {
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

// Every input is labelled.
for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
  if (el.labels.length === 0 && !el.getAttribute("aria-label")) problems.push(`no label: ${describe(el)}`);
}
// One main heading; buttons and links have a name.
const h1 = document.querySelectorAll("h1").length;
if (h1 !== 1) problems.push(`${h1} h1 headings`);
for (const el of document.querySelectorAll("a, button")) {
  if (visible(el) && !(el.innerText || el.getAttribute("aria-label") || "").trim()) problems.push(`unnamed ${describe(el)}`);
}
return problems;
"##;

/// Runs the audit on the page the browser shows; panics with every problem found.
pub async fn page_ok(c: &Client, step: &str) {
    let problems = c.execute(AUDIT, vec![]).await.expect("page audit runs");
    let problems: Vec<String> = match problems {
        Value::Array(a) => a
            .into_iter()
            .map(|p| p.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => panic!("audit answered {other}"),
    };
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    assert!(
        problems.is_empty(),
        "{step} ({url}) has problems:\n  {}",
        problems.join("\n  ")
    );
}

//! A site's extra directives: free text an admin types, parsed line by line with Apache's own
//! rules (comments, `\` continuation, quoting as `ap_getword_conf` does, nested sections) and
//! checked against an allow-list of names and arguments. What passes is re-rendered from the
//! parsed words, never copied: the vhost holds only the directives the list allows.

use std::path::Path;

/// Where and why the text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveError {
    /// 1-based number of the directive's first line.
    pub line: usize,
    /// Why, in plain words.
    pub message: String,
}

impl std::fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "directives, line {}: {}", self.line, self.message)
    }
}

/// The checked directives.
#[derive(Debug, Clone, Default)]
pub struct Directives {
    lines: Vec<(usize, Vec<String>)>,
}

impl Directives {
    /// Parses and checks `text` for the site whose folder is `site_dir`.
    pub fn parse(text: &str, site_dir: &Path) -> Result<Directives, DirectiveError> {
        let mut out = Directives::default();
        let mut open: Vec<(String, usize)> = Vec::new();
        for (line, joined) in logical_lines(text)? {
            let err = |m: String| DirectiveError { line, message: m };
            let words = words(&joined).map_err(err)?;
            let Some(first) = words.first() else { continue };
            if first.starts_with('#') {
                continue;
            }
            if out.lines.len() >= 500 {
                return Err(err("more than 500 directives.".into()));
            }
            if let Some(name) = first.strip_prefix("</") {
                let name = name.trim_end_matches('>').to_ascii_lowercase();
                match open.pop() {
                    Some((o, _)) if o == name => {}
                    Some((o, _)) => return Err(err(format!("</{name}> closes a section, but the open one is <{o}>."))),
                    None => return Err(err(format!("</{name}> closes a section that was never opened here; it would close one of Cutover's own."))),
                }
                out.lines.push((open.len(), words));
                continue;
            }
            let (name, section) = match first.strip_prefix('<') {
                Some(n) => (n.trim_end_matches('>').to_ascii_lowercase(), true),
                None => (first.to_ascii_lowercase(), false),
            };
            super::directive_rules::check(&name, section, &words, site_dir).map_err(err)?;
            out.lines.push((open.len(), words));
            if section {
                open.push((name, line));
            }
        }
        if let Some((name, line)) = open.pop() {
            return Err(DirectiveError {
                line,
                message: format!("<{name}> is never closed."),
            });
        }
        Ok(out)
    }

    /// The directives as vhost lines, `indent` before each (sections nest further).
    pub fn render(&self, indent: &str) -> String {
        self.render_where(indent, |_| true)
    }

    /// The top-level `Redirect*` lines, which go in the site folder's `<Directory>`: in the
    /// vhost itself the rewrite that picks the live release would map the request first.
    pub fn render_redirects(&self, indent: &str) -> String {
        self.render_where(indent, |(depth, words)| {
            *depth == 0 && is_redirect(&words[0])
        })
    }

    /// Everything but [`render_redirects`](Self::render_redirects)' lines.
    pub fn render_rest(&self, indent: &str) -> String {
        self.render_where(indent, |(depth, words)| {
            *depth != 0 || !is_redirect(&words[0])
        })
    }

    fn render_where(&self, indent: &str, keep: impl Fn(&(usize, Vec<String>)) -> bool) -> String {
        let mut out = String::new();
        for (depth, words) in self.lines.iter().filter(|l| keep(l)) {
            out.push_str(indent);
            out.push_str(&"    ".repeat(*depth));
            let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
            out.push_str(&quoted.join(" "));
            out.push('\n');
            // A later section's Require replaces the earlier ones' unless told to combine: a
            // site's own section must only ever narrow access, never lift Cutover's refusals
            // (PHP source, shared folders' PHP, .ht* files).
            if merges_access(&words[0]) {
                out.push_str(indent);
                out.push_str(&"    ".repeat(depth + 1));
                out.push_str("AuthMerging And\n");
            }
        }
        out
    }

    /// No directive at all.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Sections whose access rules merge with those before them.
fn merges_access(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    let w = w.trim_end_matches('>');
    [
        "<location",
        "<locationmatch",
        "<files",
        "<filesmatch",
        "<if",
        "<elseif",
        "<else",
        "<directory",
        "<directorymatch",
    ]
    .contains(&w)
}

fn is_redirect(word: &str) -> bool {
    word.to_ascii_lowercase().starts_with("redirect")
}

/// Lines joined across `\` continuations, each with its first line's number.
fn logical_lines(text: &str) -> Result<Vec<(usize, String)>, DirectiveError> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let err = |m: &str| DirectiveError {
            line,
            message: m.into(),
        };
        if raw.len() > 8000 {
            return Err(err("the line is longer than 8000 characters."));
        }
        if let Some(c) = raw.chars().find(|c| {
            (c.is_control() && *c != '\t')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{feff}')
                // Invisible and direction-changing characters: what is shown is not what runs.
                || matches!(*c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2069)
        }) {
            return Err(err(&format!(
                "the line holds the control character U+{:04X}; type plain text only.",
                c as u32
            )));
        }
        if raw.contains("${") {
            return Err(err(
                "${…} would read a server variable: write the value itself.",
            ));
        }
        let (start, mut acc) = pending.take().unwrap_or((line, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                pending = Some((start, acc));
            }
            None => {
                acc.push_str(raw);
                out.push((start, acc));
            }
        }
    }
    if let Some((start, acc)) = pending {
        out.push((start, acc));
    }
    // A continuation can join `$` and `{…}` into a variable: checked again on whole lines.
    if let Some((line, _)) = out.iter().find(|(_, l)| l.contains("${")) {
        return Err(DirectiveError {
            line: *line,
            message: "${…} would read a server variable: write the value itself.".into(),
        });
    }
    Ok(out)
}

/// Words as Apache's `ap_getword_conf` splits them: quotes group, `\` escapes the quote.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(d) = chars.next() {
                if d == '\\' && chars.peek() == Some(&c) {
                    word.push(c);
                    chars.next();
                } else if d == c {
                    closed = true;
                    break;
                } else {
                    word.push(d);
                }
            }
            if !closed {
                return Err(format!("a quote ({c}) is opened and never closed."));
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                word.push(d);
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

/// A word as Apache reads it back: bare when it can be, else double-quoted.
fn quote(w: &str) -> String {
    let bare = !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if bare {
        w.to_owned()
    } else {
        format!("\"{}\"", w.replace('"', "\\\""))
    }
}

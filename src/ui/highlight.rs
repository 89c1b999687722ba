//! A small syntax highlighter for the console's source view: one pass over the text,
//! marking comments, strings, numbers, keywords and builtins of Python, JavaScript, Cypher
//! and Jinja with `<span class>`es. It only colours; it never changes or hides a byte
//! (every character is HTML-escaped and emitted), so a wrong guess is cosmetic.

/// The source as HTML: escaped, with token spans, one `<span class="line">` per line
/// (the stylesheet numbers them).
pub fn highlight(source: &str, language: Option<&str>) -> String {
    let rules = Rules::for_language(language);
    let mut out = String::with_capacity(source.len() * 2);
    let chars: Vec<char> = source.chars().collect();
    let mut i = 0;
    out.push_str("<span class=\"line\">");
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            out.push_str("</span>\n<span class=\"line\">");
            i += 1;
            continue;
        }
        if let Some(end) = rules.comment_end(&chars, i) {
            emit(&mut out, "c", &chars[i..end]);
            i = end;
        } else if let Some(end) = rules.string_end(&chars, i) {
            emit(&mut out, "s", &chars[i..end]);
            i = end;
        } else if c.is_ascii_digit() && (i == 0 || !is_word(chars[i - 1])) {
            let end = scan(&chars, i, |c| {
                c.is_ascii_alphanumeric() || c == '.' || c == '_'
            });
            emit(&mut out, "n", &chars[i..end]);
            i = end;
        } else if is_word(c) {
            let end = scan(&chars, i, is_word);
            let word: String = chars[i..end].iter().collect();
            let class = if rules.keyword(&word) {
                Some("k")
            } else if rules.builtins.contains(&word.as_str()) {
                Some("b")
            } else {
                None
            };
            match class {
                Some(class) => emit(&mut out, class, &chars[i..end]),
                None => escape_into(&mut out, &chars[i..end]),
            }
            i = end;
        } else {
            escape_into(&mut out, &chars[i..=i]);
            i += 1;
        }
    }
    out.push_str("</span>");
    out
}

struct Rules {
    keywords: &'static [&'static str],
    builtins: &'static [&'static str],
    /// Line comment starts (`#`, `//`).
    line_comments: &'static [&'static str],
    /// Block comments (`/*`..`*/`, `{#`..`#}`).
    block_comments: &'static [(&'static str, &'static str)],
    /// Python's triple quotes.
    triple_quotes: bool,
    /// JavaScript's template literals.
    backticks: bool,
    /// Cypher keywords are case-insensitive.
    case_insensitive: bool,
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "match", "case",
];
const PYTHON_BUILTINS: &[&str] = &[
    "print",
    "len",
    "range",
    "int",
    "str",
    "float",
    "list",
    "dict",
    "set",
    "tuple",
    "open",
    "isinstance",
    "sorted",
    "sum",
    "min",
    "max",
    "enumerate",
    "zip",
    "map",
    "filter",
    "self",
    "Exception",
    "ValueError",
    "TypeError",
    "KeyError",
    "SystemExit",
    "super",
    "bool",
    "repr",
];
const JS_KEYWORDS: &[&str] = &[
    "async",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "default",
    "delete",
    "do",
    "else",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "let",
    "new",
    "null",
    "of",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "undefined",
    "var",
    "void",
    "while",
    "yield",
];
const JS_BUILTINS: &[&str] = &[
    "console", "Math", "JSON", "Promise", "Array", "Object", "String", "Number", "Error", "Map",
    "Set",
];
const CYPHER_KEYWORDS: &[&str] = &[
    "match", "optional", "where", "return", "with", "unwind", "as", "order", "by", "limit", "skip",
    "create", "merge", "set", "delete", "detach", "remove", "call", "yield", "and", "or", "not",
    "in", "is", "null", "true", "false", "distinct", "case", "when", "then", "else", "end",
    "exists", "union", "all", "asc", "desc", "on",
];
const CYPHER_BUILTINS: &[&str] = &[
    "count", "collect", "coalesce", "size", "labels", "type", "id",
];
const JINJA_KEYWORDS: &[&str] = &[
    "for",
    "in",
    "endfor",
    "if",
    "elif",
    "else",
    "endif",
    "set",
    "endset",
    "macro",
    "endmacro",
    "block",
    "endblock",
    "extends",
    "include",
    "import",
    "from",
    "and",
    "or",
    "not",
    "is",
    "true",
    "false",
    "none",
    "with",
    "endwith",
    "filter",
    "endfilter",
];

impl Rules {
    fn for_language(language: Option<&str>) -> Self {
        match language {
            Some("javascript") => Rules {
                keywords: JS_KEYWORDS,
                builtins: JS_BUILTINS,
                line_comments: &["//"],
                block_comments: &[("/*", "*/")],
                triple_quotes: false,
                backticks: true,
                case_insensitive: false,
            },
            Some("cypher") => Rules {
                keywords: CYPHER_KEYWORDS,
                builtins: CYPHER_BUILTINS,
                line_comments: &["//"],
                block_comments: &[("/*", "*/")],
                triple_quotes: false,
                backticks: false,
                case_insensitive: true,
            },
            Some("jinja") => Rules {
                keywords: JINJA_KEYWORDS,
                builtins: &[],
                line_comments: &[],
                block_comments: &[("{#", "#}")],
                triple_quotes: false,
                backticks: false,
                case_insensitive: false,
            },
            // Python, and a sensible default for anything else.
            _ => Rules {
                keywords: PYTHON_KEYWORDS,
                builtins: PYTHON_BUILTINS,
                line_comments: &["#"],
                block_comments: &[],
                triple_quotes: true,
                backticks: false,
                case_insensitive: false,
            },
        }
    }

    fn keyword(&self, word: &str) -> bool {
        if self.case_insensitive {
            let lower = word.to_ascii_lowercase();
            self.keywords.contains(&lower.as_str())
        } else {
            self.keywords.contains(&word)
        }
    }

    fn comment_end(&self, chars: &[char], i: usize) -> Option<usize> {
        for start in self.line_comments {
            if starts_with(chars, i, start) {
                return Some(scan(chars, i, |c| c != '\n'));
            }
        }
        for (start, end) in self.block_comments {
            if starts_with(chars, i, start) {
                let mut j = i + start.chars().count();
                while j < chars.len() && !starts_with(chars, j, end) {
                    j += 1;
                }
                return Some((j + end.chars().count()).min(chars.len()));
            }
        }
        None
    }

    fn string_end(&self, chars: &[char], i: usize) -> Option<usize> {
        let quote = chars[i];
        let backtick = self.backticks && quote == '`';
        if quote != '"' && quote != '\'' && !backtick {
            return None;
        }
        if self.triple_quotes && starts_with(chars, i, &quote.to_string().repeat(3)) {
            let close = quote.to_string().repeat(3);
            let mut j = i + 3;
            while j < chars.len() && !starts_with(chars, j, &close) {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            return Some((j + 3).min(chars.len()));
        }
        let mut j = i + 1;
        while j < chars.len() && chars[j] != quote {
            // Only template literals span lines; a stray quote ends at the line's end.
            if chars[j] == '\n' && !backtick {
                return Some(j);
            }
            j += if chars[j] == '\\' { 2 } else { 1 };
        }
        Some((j + 1).min(chars.len()))
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn starts_with(chars: &[char], i: usize, pattern: &str) -> bool {
    (i..)
        .zip(pattern.chars())
        .all(|(j, p)| chars.get(j) == Some(&p))
}

fn scan(chars: &[char], i: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut j = i;
    while j < chars.len() && keep(chars[j]) {
        j += 1;
    }
    j
}

/// Emit a token span; a multi-line token (a docstring) is closed and reopened at each
/// line break so line spans stay balanced.
fn emit(out: &mut String, class: &str, chars: &[char]) {
    out.push_str("<span class=\"");
    out.push_str(class);
    out.push_str("\">");
    for c in chars {
        if *c == '\n' {
            out.push_str("</span></span>\n<span class=\"line\"><span class=\"");
            out.push_str(class);
            out.push_str("\">");
        } else {
            escape_char(out, *c);
        }
    }
    out.push_str("</span>");
}

fn escape_into(out: &mut String, chars: &[char]) {
    for c in chars {
        escape_char(out, *c);
    }
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(html: &str) -> String {
        // Drop tags, unescape: what the reader sees.
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn python_tokens_are_marked_and_every_byte_survives() {
        let source = "def f(x):  # add <one>\n    \"\"\"Doc\n    string\"\"\"\n    return x + 1 if x else 'a&b'\n";
        let html = highlight(source, Some("python"));
        assert!(html.contains("<span class=\"k\">def</span>"));
        assert!(html.contains("<span class=\"c\"># add &lt;one&gt;</span>"));
        assert!(html.contains("<span class=\"s\">&#39;a&amp;b&#39;</span>"));
        assert!(html.contains("<span class=\"n\">1</span>"));
        assert_eq!(text_of(&html), source);
        assert_eq!(
            html.matches("<span").count(),
            html.matches("</span>").count()
        );
    }

    #[test]
    fn markup_in_code_is_escaped_not_rendered() {
        let html = highlight("print('<script>alert(1)</script>')", Some("python"));
        assert!(!html.contains("<script>"));
        let html = highlight("`<img src=x onerror=alert(1)>`", Some("javascript"));
        assert!(!html.contains("<img"));
    }

    #[test]
    fn javascript_and_cypher_have_their_own_words() {
        let html = highlight("const x = `a\nb`; // hi", Some("javascript"));
        assert!(html.contains("<span class=\"k\">const</span>"));
        assert!(html.contains("<span class=\"c\">// hi</span>"));
        let html = highlight("MATCH (n) RETURN count(n)", Some("cypher"));
        assert!(html.contains("<span class=\"k\">MATCH</span>"));
        assert!(html.contains("<span class=\"b\">count</span>"));
    }
}

//! request-transformer's templates: text with `$(expression)` placeholders, each replaced by
//! what the expression finds in the request (Kong renders them with Penlight's templates,
//! evaluating the expression as Lua in a sandbox).
//!
//! The expressions Kong documents are understood: a lookup in `headers`, `query_params`,
//! `uri_captures` or `shared` (`headers.x_user`, `headers["x-user"]`, `uri_captures[1]`),
//! a quoted string or a number, parentheses, and `or` between them (the first that is found:
//! `$(uri_captures["id"] or query_params["id"] or "unknown")`). Anything else Lua would run
//! (functions, `..`, method calls) is refused when the configuration is read, naming the
//! template, rather than run. As in Penlight, a placeholder is `$` and a balanced pair of
//! parentheses (counted without regard to quotes), and one that finds nothing renders as
//! nothing; a `$` without one is text.

/// Where a lookup looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The request's headers (a name is matched in any case, `_` standing for `-`).
    Headers,
    /// The query arguments, decoded.
    QueryParams,
    /// The matched route's regex captures.
    UriCaptures,
    /// Kong's `kong.ctx.shared`: what plugins leave for each other (nothing here).
    Shared,
}

/// The key of a lookup: `.name` or `["name"]`, or `[1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// A name.
    Name(String),
    /// A number.
    Number(usize),
}

/// What a template reads values from.
pub trait Values {
    /// The value `key` of `source`, if there is one.
    fn lookup(&self, source: Source, key: &Key) -> Option<&[u8]>;
}

/// One alternative of an `or` chain.
#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Lookup(Source, Key),
    Literal(String),
    /// A parenthesised chain.
    Group(Vec<Operand>),
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    /// The first alternative found.
    Placeholder(Vec<Operand>),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Deepest nesting of parentheses in an expression: bounds the parser's recursion.
const MAX_DEPTH: usize = 16;

impl Template {
    /// Parses `text`; `Err` says what in it is not supported.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("$(") {
            let inner_start = at + 2;
            let Some(len) = balanced(&rest[at + 1..]) else {
                break;
            };
            literal.push_str(&rest[..at]);
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            let expr = &rest[inner_start..at + len];
            let chain = Parser::new(expr).whole().map_err(|why| {
                format!("value '{text}' is not in supported format, error: {why} in `{expr}`")
            })?;
            parts.push(Part::Placeholder(chain));
            rest = &rest[at + 1 + len..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// Whether the template is plain text.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Appends the rendered template to `out`.
    pub fn render(&self, values: &dyn Values, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Placeholder(chain) => {
                    if let Some(v) = first_found(chain, values) {
                        out.extend_from_slice(v);
                    }
                }
            }
        }
    }
}

fn first_found<'v>(chain: &'v [Operand], values: &'v dyn Values) -> Option<&'v [u8]> {
    chain.iter().find_map(|operand| match operand {
        Operand::Lookup(source, key) => values.lookup(*source, key),
        Operand::Literal(text) => Some(text.as_bytes()),
        Operand::Group(inner) => first_found(inner, values),
    })
}

/// The length of `text`'s leading balanced `( … )`, both parentheses included (Lua's
/// `%b()`: quotes are not looked at).
fn balanced(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// A recursive-descent parser of the expressions above.
struct Parser<'t> {
    text: &'t str,
    at: usize,
    depth: usize,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Parser<'t> {
        Parser {
            text,
            at: 0,
            depth: 0,
        }
    }

    fn whole(mut self) -> Result<Vec<Operand>, String> {
        let chain = self.chain()?;
        self.space();
        if self.at < self.text.len() {
            return Err(format!("unexpected `{}`", &self.text[self.at..]));
        }
        Ok(chain)
    }

    fn space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// `operand (or operand)*`
    fn chain(&mut self) -> Result<Vec<Operand>, String> {
        let mut chain = vec![self.operand()?];
        loop {
            self.space();
            let rest = &self.text[self.at..];
            let is_or = rest.starts_with("or")
                && !rest[2..]
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !is_or {
                return Ok(chain);
            }
            self.at += 2;
            chain.push(self.operand()?);
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.space();
        match self.peek() {
            Some(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err("parentheses nested too deep".into());
                }
                self.at += 1;
                let inner = self.chain()?;
                self.space();
                if self.peek() != Some(b')') {
                    return Err("a `(` without its `)`".into());
                }
                self.at += 1;
                self.depth -= 1;
                Ok(Operand::Group(inner))
            }
            Some(b'"' | b'\'') => Ok(Operand::Literal(self.string()?)),
            Some(b'0'..=b'9') => Ok(Operand::Literal(self.number()?.to_string())),
            _ => {
                let name = self.ident();
                let source = match name {
                    "headers" => Source::Headers,
                    "query_params" => Source::QueryParams,
                    "uri_captures" => Source::UriCaptures,
                    "shared" => Source::Shared,
                    "" => return Err("an expression was expected".into()),
                    other => {
                        return Err(format!(
                            "`{other}` is not supported (only headers, query_params, uri_captures, shared, quoted strings, numbers and `or`)"
                        ))
                    }
                };
                self.space();
                let key = match self.peek() {
                    Some(b'.') => {
                        self.at += 1;
                        self.space();
                        match self.ident() {
                            "" => return Err("a name after `.` was expected".into()),
                            name => Key::Name(name.to_string()),
                        }
                    }
                    Some(b'[') => {
                        self.at += 1;
                        self.space();
                        let key = match self.peek() {
                            Some(b'"' | b'\'') => Key::Name(self.string()?),
                            Some(b'0'..=b'9') => Key::Number(self.number()?),
                            _ => return Err("a quoted name or a number in `[ ]`".into()),
                        };
                        self.space();
                        if self.peek() != Some(b']') {
                            return Err("a `[` without its `]`".into());
                        }
                        self.at += 1;
                        key
                    }
                    _ => return Err(format!("`{name}` must be followed by `.name` or `[key]`")),
                };
                Ok(Operand::Lookup(source, key))
            }
        }
    }

    fn ident(&mut self) -> &'t str {
        let rest = &self.text[self.at..];
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let starts_well = rest.bytes().next().is_some_and(|b| !b.is_ascii_digit());
        if !starts_well {
            return "";
        }
        self.at += len;
        &rest[..len]
    }

    fn number(&mut self) -> Result<usize, String> {
        let rest = &self.text[self.at..];
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        self.at += len;
        rest[..len]
            .parse()
            .map_err(|_| format!("the number {} is too large", &rest[..len]))
    }

    /// A Lua short string: `"…"` or `'…'` with the common backslash escapes.
    fn string(&mut self) -> Result<String, String> {
        let bytes = self.text.as_bytes();
        let quote = bytes[self.at];
        let mut out = String::new();
        let mut i = self.at + 1;
        let mut run = i;
        while i < bytes.len() {
            match bytes[i] {
                b if b == quote => {
                    out.push_str(&self.text[run..i]);
                    self.at = i + 1;
                    return Ok(out);
                }
                b'\\' => {
                    out.push_str(&self.text[run..i]);
                    let escaped = match bytes.get(i + 1) {
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'\\') => '\\',
                        Some(b'"') => '"',
                        Some(b'\'') => '\'',
                        _ => return Err("an unsupported escape in a string".into()),
                    };
                    out.push(escaped);
                    i += 2;
                    run = i;
                }
                b'\n' => return Err("a string across lines".into()),
                _ => i += 1,
            }
        }
        Err("a string without its closing quote".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Values for Fixed {
        fn lookup(&self, source: Source, key: &Key) -> Option<&[u8]> {
            match (source, key) {
                (Source::Headers, Key::Name(n)) if n == "x-user" || n == "x_user" => Some(b"ann"),
                (Source::QueryParams, Key::Name(n)) if n == "id" => Some(b"7"),
                (Source::UriCaptures, Key::Number(1)) => Some(b"cap1"),
                _ => None,
            }
        }
    }

    fn render(text: &str) -> Result<String, String> {
        let t = Template::parse(text)?;
        let mut out = Vec::new();
        t.render(&Fixed, &mut out);
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn kongs_documented_forms_render() {
        assert_eq!(
            render("Basic $(query_params[\"id\"])").as_deref(),
            Ok("Basic 7")
        );
        assert_eq!(
            render("$(headers.x_user)-$(headers['x-user'])").as_deref(),
            Ok("ann-ann")
        );
        assert_eq!(render("$(uri_captures[1])").as_deref(), Ok("cap1"));
        assert_eq!(
            render(r#"$(uri_captures["user-id"] or query_params["user"] or "unknown")"#).as_deref(),
            Ok("unknown")
        );
        assert_eq!(
            render("$(headers.nope)").as_deref(),
            Ok(""),
            "nothing found: nothing"
        );
        // The escape Kong documents: a template inside a string inside a template.
        assert_eq!(
            render("$('$(some_escaped_template)')").as_deref(),
            Ok("$(some_escaped_template)")
        );
        assert_eq!(
            render("a $ b $(x").as_deref(),
            Ok("a $ b $(x"),
            "no placeholder"
        );
        assert_eq!(
            render("$((shared.x or (query_params.id)))").as_deref(),
            Ok("7")
        );
        assert_eq!(render("$(12)").as_deref(), Ok("12"));
    }

    #[test]
    fn what_lua_would_run_is_refused_naming_it() {
        for bad in [
            "$((function() return 1 end)())",
            "$(headers.a .. 'x')",
            "$(os.exit())",
            "$(headers)",
            "$(headers[x])",
            "$('open)",
            "$()",
            &format!("$({}1{})", "(".repeat(40), ")".repeat(40)),
        ] {
            let err = Template::parse(bad).expect_err(bad);
            assert!(err.contains("is not in supported format"), "{bad}: {err}");
        }
    }
}

//! Falco's condition language: tokenizer and parser. Produces an expression whose names are
//! still unresolved (a bare identifier may be a macro; a list item may name a list); the rule
//! set resolves them when it compiles.

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Intersects,
    StartsWith,
    EndsWith,
    Contains,
    IContains,
    Glob,
    PMatch,
    Exists,
}

impl Op {
    fn from_word(w: &str) -> Option<Op> {
        Some(match w {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "startswith" | "bstartswith" => Op::StartsWith,
            "endswith" => Op::EndsWith,
            "contains" | "bcontains" => Op::Contains,
            "icontains" => Op::IContains,
            "glob" => Op::Glob,
            "pmatch" => Op::PMatch,
            "exists" => Op::Exists,
            _ => return None,
        })
    }

    /// Operators whose right side is a parenthesised list.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// An unresolved expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    /// A bare identifier: a macro name.
    Name(String),
    /// `field op value`, `field op (items…)` or `field exists`.
    Cmp {
        field: String,
        op: Op,
        values: Vec<Item>,
    },
}

/// A list item or comparison value: quoted text is always literal; a bare word may name a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Quoted(String),
    Bare(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Word(String),
    Quoted(String),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(format!("unterminated string starting {quote}{s}"));
                }
                i += 1;
                toks.push(Tok::Quoted(s));
            }
            '=' | '!' | '<' | '>' => {
                let mut s = c.to_string();
                if chars.get(i + 1) == Some(&'=') {
                    s.push('=');
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Word(s));
            }
            _ => {
                let mut s = String::new();
                let mut depth = 0;
                while i < chars.len() {
                    let ch = chars[i];
                    if depth == 0 && (ch.is_whitespace() || ch == '(' || ch == ')' || ch == ',') {
                        break;
                    }
                    // A field argument (`jevt.value[/a/b]`) may hold anything up to `]`.
                    if ch == '[' {
                        depth += 1;
                    } else if ch == ']' {
                        depth -= 1;
                    } else if depth == 0
                        && (ch == '='
                            || ch == '<'
                            || ch == '>'
                            || (ch == '!' && chars.get(i + 1) == Some(&'=')))
                    {
                        break;
                    }
                    s.push(ch);
                    i += 1;
                }
                toks.push(Tok::Word(s));
            }
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Ast, String> {
        let mut parts = vec![self.and()?];
        while self.peek_word("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Ast::Or(parts) })
    }

    fn and(&mut self) -> Result<Ast, String> {
        let mut parts = vec![self.not()?];
        while self.peek_word("and") {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Ast::And(parts) })
    }

    fn not(&mut self) -> Result<Ast, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Ast::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Ast, String> {
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    other => Err(format!("expected `)`, found {other:?}")),
                }
            }
            Some(Tok::Word(name)) => {
                let op = match self.peek() {
                    Some(Tok::Word(w)) => Op::from_word(w),
                    _ => None,
                };
                let Some(op) = op else { return Ok(Ast::Name(name)) };
                self.pos += 1;
                let values = if op == Op::Exists {
                    vec![]
                } else if op.takes_list() || self.peek() == Some(&Tok::Open) {
                    self.list()?
                } else {
                    match self.next() {
                        Some(Tok::Word(w)) => vec![Item::Bare(w)],
                        Some(Tok::Quoted(q)) => vec![Item::Quoted(q)],
                        other => return Err(format!("`{name}`: expected a value, found {other:?}")),
                    }
                };
                Ok(Ast::Cmp { field: name, op, values })
            }
            other => Err(format!("expected a condition, found {other:?}")),
        }
    }

    fn list(&mut self) -> Result<Vec<Item>, String> {
        match self.next() {
            Some(Tok::Open) => {}
            other => return Err(format!("expected `(`, found {other:?}")),
        }
        let mut items = Vec::new();
        loop {
            match self.next() {
                Some(Tok::Close) => return Ok(items),
                Some(Tok::Comma) => {}
                Some(Tok::Word(w)) => items.push(Item::Bare(w)),
                Some(Tok::Quoted(q)) => items.push(Item::Quoted(q)),
                other => return Err(format!("unexpected {other:?} in a list")),
            }
        }
    }
}

/// Parse one condition.
pub fn parse(condition: &str) -> Result<Ast, String> {
    let mut p = Parser { toks: tokenize(condition)?, pos: 0 };
    let ast = p.or()?;
    match p.peek() {
        None => Ok(ast),
        Some(t) => Err(format!("unexpected {t:?} after a complete condition")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_falco_conditions() {
        let a = parse("kevt and pod and kcreate and not ka.req.pod.containers.image.repository in (k8s_audit_privileged_images, \"x y\")").unwrap();
        let Ast::And(parts) = a else { panic!() };
        assert_eq!(parts.len(), 4);
        assert!(matches!(&parts[3], Ast::Not(inner) if matches!(**inner, Ast::Cmp { op: Op::In, .. })));
        let b = parse("ka.uri=/healthz or ka.uri startswith /healthz?").unwrap();
        assert_eq!(
            b,
            Ast::Or(vec![
                Ast::Cmp { field: "ka.uri".into(), op: Op::Eq, values: vec![Item::Bare("/healthz".into())] },
                Ast::Cmp {
                    field: "ka.uri".into(),
                    op: Op::StartsWith,
                    values: vec![Item::Bare("/healthz?".into())]
                },
            ])
        );
        let c = parse("jevt.value[/annotations/authorization.k8s.io~1decision] exists and not (jevt.value[/a~1~0b] exists)").unwrap();
        assert!(
            matches!(c, Ast::And(ref p) if matches!(&p[0], Ast::Cmp { field, op: Op::Exists, .. } if field == "jevt.value[/annotations/authorization.k8s.io~1decision]"))
        );
        assert!(matches!(
            parse("ka.response.code startswith 2").unwrap(),
            Ast::Cmp { op: Op::StartsWith, .. }
        ));
        assert!(matches!(parse("ka.verb!=get").unwrap(), Ast::Cmp { op: Op::Ne, .. }));
        assert!(parse("(a and b").is_err());
        assert!(parse("a b").is_err());
    }
}

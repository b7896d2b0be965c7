//! Lexer: source text → tokens with byte spans. Comments and line breaks are kept as trivia on the
//! token that follows them, so the formatter can put them back.
//!
//! Strings are lexed into `StrOpen`, raw `StrText` pieces (escapes checked but not yet decoded),
//! `InterpOpen` … tokens … `InterpClose`, and `StrClose`; a stack of open strings tracks nested
//! interpolations without recursion.

use crate::codes;
use crate::diagnostic::{DResult, Diag};
use crate::span::{FileId, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword; its text is the source under the span.
    Word,
    Int(i64),
    StrOpen {
        triple: bool,
    },
    /// Raw string text, escapes not yet decoded.
    StrText,
    /// `${` inside a string.
    InterpOpen,
    /// The `}` that closes an interpolation.
    InterpClose,
    StrClose,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Eq,
    EqEq,
    NotEq,
    Dot,
    Plus,
    /// `//`
    Merge,
    Eof,
}

impl Tok {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(self) -> &'static str {
        match self {
            Tok::Word => "a name",
            Tok::Int(_) => "an integer",
            Tok::StrOpen { .. } | Tok::StrText | Tok::StrClose => "a string",
            Tok::InterpOpen => "`${`",
            Tok::InterpClose => "`}`",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::Comma => "`,`",
            Tok::Eq => "`=`",
            Tok::EqEq => "`==`",
            Tok::NotEq => "`!=`",
            Tok::Dot => "`.`",
            Tok::Plus => "`+`",
            Tok::Merge => "`//`",
            Tok::Eof => "the end of the file",
        }
    }
}

/// A `#` comment, text without the line break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Comment {
    pub text: String,
    pub span: Span,
    /// Starts its own line (false: it follows code on the same line).
    pub own_line: bool,
    /// A blank line separates it from what came before.
    pub blank_before: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Tok,
    pub span: Span,
    /// Comments between the previous token and this one.
    pub comments: Vec<Comment>,
    /// A blank line separates this token from the previous token or comment.
    pub blank_before: bool,
}

struct OpenString {
    triple: bool,
    open: Span,
    /// `Some(span of "${", brace depth)` while lexing an interpolation.
    interp: Option<(Span, usize)>,
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    file: FileId,
    tokens: Vec<Token>,
    comments: Vec<Comment>,
    /// Newlines since the last token or comment.
    newlines: usize,
    strings: Vec<OpenString>,
}

pub(crate) fn lex(src: &str, file: FileId) -> DResult<Vec<Token>> {
    let mut lx = Lexer {
        src,
        pos: 0,
        file,
        tokens: Vec::new(),
        comments: Vec::new(),
        newlines: 0,
        strings: Vec::new(),
    };
    lx.run()?;
    Ok(lx.tokens)
}

impl Lexer<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn push(&mut self, kind: Tok, start: usize, end: usize) {
        let comments = std::mem::take(&mut self.comments);
        let blank_before = self.newlines >= 2;
        self.newlines = 0;
        self.tokens.push(Token {
            kind,
            span: self.span(start, end),
            comments,
            blank_before,
        });
    }

    fn in_string_body(&self) -> bool {
        self.strings.last().is_some_and(|s| s.interp.is_none())
    }

    fn run(&mut self) -> DResult<()> {
        loop {
            if self.in_string_body() {
                self.string_body()?;
                continue;
            }
            self.trivia();
            let start = self.pos;
            let Some(c) = self.peek() else {
                if let Some(open) = self.strings.last() {
                    return Err(unterminated_interpolation(open));
                }
                self.push(Tok::Eof, start, start);
                return Ok(());
            };
            match c {
                '"' => {
                    let triple = self.rest().starts_with("\"\"\"");
                    let len = if triple { 3 } else { 1 };
                    self.pos += len;
                    self.push(Tok::StrOpen { triple }, start, self.pos);
                    self.strings.push(OpenString {
                        triple,
                        open: self.span(start, self.pos),
                        interp: None,
                    });
                }
                '{' => {
                    if let Some((_, depth)) =
                        self.strings.last_mut().and_then(|s| s.interp.as_mut())
                    {
                        *depth += 1;
                    }
                    self.single(Tok::LBrace);
                }
                '}' => {
                    let closes_interp =
                        match self.strings.last_mut().and_then(|s| s.interp.as_mut()) {
                            Some((_, 0)) => true,
                            Some((_, depth)) => {
                                *depth -= 1;
                                false
                            }
                            None => false,
                        };
                    if closes_interp {
                        if let Some(open) = self.strings.last_mut() {
                            open.interp = None;
                        }
                        self.single(Tok::InterpClose);
                    } else {
                        self.single(Tok::RBrace);
                    }
                }
                '[' => self.single(Tok::LBracket),
                ']' => self.single(Tok::RBracket),
                '(' => self.single(Tok::LParen),
                ')' => self.single(Tok::RParen),
                ',' => self.single(Tok::Comma),
                '.' => self.single(Tok::Dot),
                '+' => self.single(Tok::Plus),
                '=' => {
                    if self.rest().starts_with("==") {
                        self.pos += 2;
                        self.push(Tok::EqEq, start, self.pos);
                    } else {
                        self.single(Tok::Eq);
                    }
                }
                '!' if self.rest().starts_with("!=") => {
                    self.pos += 2;
                    self.push(Tok::NotEq, start, self.pos);
                }
                '/' if self.rest().starts_with("//") => {
                    self.pos += 2;
                    self.push(Tok::Merge, start, self.pos);
                }
                '0'..='9' => self.number()?,
                c if c == '_' || c.is_ascii_alphabetic() => {
                    let len = self
                        .rest()
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                        .unwrap_or(self.rest().len());
                    self.pos += len;
                    self.push(Tok::Word, start, self.pos);
                }
                other => return Err(self.unexpected_char(other)),
            }
        }
    }

    fn single(&mut self, kind: Tok) {
        let start = self.pos;
        self.pos += 1;
        self.push(kind, start, self.pos);
    }

    fn unexpected_char(&self, c: char) -> Box<Diag> {
        let span = self.span(self.pos, self.pos + c.len_utf8());
        let (label, help) = match c {
            '/' => (
                "not an operator",
                Some("`//` merges two records; comments start with `#`"),
            ),
            '!' => ("not an operator", Some("`!=` tests inequality")),
            '-' | '*' | '%' | '<' | '>' => (
                "not an operator",
                Some("the only operators are `+`, `//`, `==` and `!=`"),
            ),
            ';' => (
                "not needed",
                Some("statements and fields are separated by line breaks"),
            ),
            ':' => ("not a separator", Some("fields are written `key = value`")),
            '\'' => ("not a quote", Some("strings use double quotes: \"...\"")),
            _ => ("unexpected character", None),
        };
        let printable = if c.is_control() {
            format!("{c:?}")
        } else {
            format!("`{c}`")
        };
        let mut diag = Diag::new(
            codes::UNEXPECTED_CHAR,
            span,
            format!("unexpected character {printable}"),
        )
        .label(label);
        if let Some(help) = help {
            diag = diag.help(help);
        }
        Box::new(diag)
    }

    /// Skips whitespace and comments, recording comments and line breaks.
    fn trivia(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                '\n' => {
                    self.newlines += 1;
                    self.pos += 1;
                }
                ' ' | '\t' | '\r' => self.pos += 1,
                '#' => {
                    let start = self.pos;
                    let len = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.pos += len;
                    let text = self.src[start..self.pos].trim_end().to_owned();
                    let own_line =
                        self.newlines > 0 || (self.tokens.is_empty() && self.comments.is_empty());
                    let blank_before = self.newlines >= 2;
                    self.newlines = 0;
                    let span = self.span(start, start + text.len());
                    self.comments.push(Comment {
                        text,
                        span,
                        own_line,
                        blank_before,
                    });
                }
                _ => break,
            }
        }
    }

    fn number(&mut self) -> DResult<()> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        self.pos += len;
        let text = &self.src[start..self.pos];
        let span = self.span(start, self.pos);
        let value = parse_int(text).map_err(|e| e.into_diag(span, text))?;
        self.push(Tok::Int(value), start, self.pos);
        Ok(())
    }

    /// Lexes string text up to the closing quote or the next `${`.
    fn string_body(&mut self) -> DResult<()> {
        let Some(open) = self.strings.last() else {
            return Ok(());
        };
        let (triple, open_span) = (open.triple, open.open);
        let start = self.pos;
        loop {
            let Some(c) = self.peek() else {
                return Diag::new(codes::UNTERMINATED_STRING, open_span, "unterminated string")
                    .label("this string is never closed")
                    .help(if triple {
                        "close it with `\"\"\"`"
                    } else {
                        "close it with `\"`"
                    })
                    .err();
            };
            let closes = if triple {
                self.rest().starts_with("\"\"\"")
            } else {
                c == '"'
            };
            if closes {
                if self.pos > start {
                    self.push(Tok::StrText, start, self.pos);
                }
                let close_start = self.pos;
                self.pos += if triple { 3 } else { 1 };
                self.push(Tok::StrClose, close_start, self.pos);
                self.strings.pop();
                return Ok(());
            }
            match c {
                '\n' if !triple => {
                    return Diag::new(codes::UNTERMINATED_STRING, open_span, "unterminated string")
                        .label("this string is not closed on its line")
                        .help("close it with `\"`; for text spanning lines use `\"\"\"` or `\\n`")
                        .err();
                }
                '\\' => self.escape()?,
                '$' if self.peek_at(1) == Some('{') => {
                    if self.pos > start {
                        self.push(Tok::StrText, start, self.pos);
                    }
                    let interp_start = self.pos;
                    self.pos += 2;
                    self.push(Tok::InterpOpen, interp_start, self.pos);
                    let span = self.span(interp_start, self.pos);
                    if let Some(open) = self.strings.last_mut() {
                        open.interp = Some((span, 0));
                    }
                    return Ok(());
                }
                c => self.pos += c.len_utf8(),
            }
        }
    }

    /// Checks one escape sequence at `self.pos` (which is at the backslash) and skips it.
    fn escape(&mut self) -> DResult<()> {
        let start = self.pos;
        let Some(next) = self.peek_at(1) else {
            self.pos += 1;
            return Ok(()); // end of input: reported as an unterminated string
        };
        match next {
            'n' | 't' | 'r' | '\\' | '"' | '$' => {
                self.pos += 2;
                Ok(())
            }
            'u' => {
                let rest = &self.src[start + 2..];
                let body = rest
                    .strip_prefix('{')
                    .and_then(|r| r.find('}').map(|end| &r[..end]))
                    .filter(|hex| hex.len() <= 8);
                let valid = body
                    .filter(|hex| !hex.is_empty() && hex.len() <= 6)
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .and_then(char::from_u32);
                match (body, valid) {
                    (Some(hex), Some(_)) => {
                        self.pos = start + 2 + hex.len() + 2;
                        Ok(())
                    }
                    (Some(hex), None) => Diag::new(
                        codes::BAD_ESCAPE,
                        self.span(start, start + 2 + hex.len() + 2),
                        format!("invalid unicode escape `\\u{{{hex}}}`"),
                    )
                    .label("not a Unicode scalar value")
                    .help("write 1 to 6 hex digits naming a character, e.g. `\\u{1F600}`")
                    .err(),
                    (None, _) => Diag::new(
                        codes::BAD_ESCAPE,
                        self.span(start, start + 2),
                        "malformed unicode escape",
                    )
                    .label("expected `{` and hex digits after `\\u`")
                    .help("write e.g. `\\u{1F600}`")
                    .err(),
                }
            }
            other => Diag::new(
                codes::BAD_ESCAPE,
                self.span(start, start + 1 + other.len_utf8()),
                format!("unknown escape sequence `\\{other}`"),
            )
            .label("unknown escape")
            .help("valid escapes are `\\n`, `\\t`, `\\r`, `\\\\`, `\\\"`, `\\$` and `\\u{...}`; write `\\\\` for a backslash")
            .err(),
        }
    }
}

fn unterminated_interpolation(open: &OpenString) -> Box<Diag> {
    let span = open.interp.map_or(open.open, |(span, _)| span);
    Box::new(
        Diag::new(
            codes::UNTERMINATED_INTERPOLATION,
            span,
            "unterminated interpolation",
        )
        .label("this `${` is never closed")
        .help("close the interpolation with `}` and the string with its quote; write `\\${` for a literal `${`"),
    )
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IntError {
    Malformed(&'static str),
    LeadingZero,
    TooLarge,
}

impl IntError {
    fn into_diag(self, span: Span, text: &str) -> Box<Diag> {
        let diag = match self {
            IntError::Malformed(why) => {
                Diag::new(codes::BAD_NUMBER, span, format!("malformed number `{text}`"))
                    .label(why)
                    .help("integers are written `123`, `0o755`, `0x1f` or `0b101`, with optional `_` between digits")
            }
            IntError::LeadingZero => {
                let digits = text.trim_start_matches('0');
                Diag::new(codes::BAD_NUMBER, span, format!("number `{text}` has a leading zero"))
                    .label("ambiguous leading zero")
                    .help(format!(
                        "write `0o{digits}` for octal (e.g. a file mode) or `{}` for decimal",
                        if digits.is_empty() { "0" } else { digits }
                    ))
            }
            IntError::TooLarge => {
                Diag::new(codes::INT_TOO_LARGE, span, format!("integer `{text}` is too large"))
                    .label("does not fit in 64 bits")
                    .help(format!("the largest integer is {}", i64::MAX))
            }
        };
        Box::new(diag)
    }
}

/// Parses an integer literal: decimal, `0o`, `0x`, `0b`, `_` between digits.
pub(crate) fn parse_int(text: &str) -> Result<i64, IntError> {
    let (radix, digits) = match text.get(..2) {
        Some("0x") | Some("0X") => (16, &text[2..]),
        Some("0o") | Some("0O") => (8, &text[2..]),
        Some("0b") | Some("0B") => (2, &text[2..]),
        _ => (10, text),
    };
    if digits.is_empty() || digits.trim_matches('_').is_empty() {
        return Err(IntError::Malformed("no digits"));
    }
    if digits.starts_with('_') {
        return Err(IntError::Malformed("`_` must come between digits"));
    }
    let mut value: u64 = 0;
    let mut too_large = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let Some(d) = c.to_digit(radix) else {
            return Err(IntError::Malformed(match (radix, c) {
                (8, '8' | '9') => "octal digits are 0 to 7",
                (2, '2'..='9') => "binary digits are 0 and 1",
                (10, c) if c.is_ascii_alphabetic() => "names cannot start with a digit",
                _ => "not a digit",
            }));
        };
        match value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => too_large = true,
        }
    }
    if radix == 10 && text.len() > 1 && text.starts_with('0') {
        return Err(IntError::LeadingZero);
    }
    if too_large {
        return Err(IntError::TooLarge);
    }
    i64::try_from(value).map_err(|_| IntError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        match lex(src, 0) {
            Ok(tokens) => tokens.into_iter().map(|t| t.kind).collect(),
            Err(e) => panic!("{}: {}", e.code, e.message),
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("0o755"), Ok(0o755));
        assert_eq!(parse_int("0x1f"), Ok(31));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert_eq!(parse_int("10_000"), Ok(10_000));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int("9223372036854775808"), Err(IntError::TooLarge));
        assert_eq!(
            parse_int("99999999999999999999999"),
            Err(IntError::TooLarge)
        );
        assert_eq!(parse_int("0755"), Err(IntError::LeadingZero));
        assert!(matches!(parse_int("0o9"), Err(IntError::Malformed(_))));
        assert!(matches!(parse_int("0x"), Err(IntError::Malformed(_))));
        assert!(matches!(parse_int("12ab"), Err(IntError::Malformed(_))));
        assert!(matches!(parse_int("0x_"), Err(IntError::Malformed(_))));
    }

    #[test]
    fn strings_and_interpolation() {
        use Tok::*;
        assert_eq!(
            kinds(r#""a${ {x = "}"}.x }b""#),
            vec![
                StrOpen { triple: false },
                StrText,
                InterpOpen,
                LBrace,
                Word,
                Eq,
                StrOpen { triple: false },
                StrText,
                StrClose,
                RBrace,
                Dot,
                Word,
                InterpClose,
                StrText,
                StrClose,
                Eof
            ]
        );
        assert_eq!(
            kinds("\"\"\"\n  a \"quoted\"\n  \"\"\""),
            vec![StrOpen { triple: true }, StrText, StrClose, Eof]
        );
    }

    #[test]
    fn comments_are_trivia() {
        let tokens = match lex("# head\n\nlet x = 1 # tail\n# own\ny", 0) {
            Ok(t) => t,
            Err(e) => panic!("{}", e.message),
        };
        assert_eq!(tokens[0].comments.len(), 1);
        assert!(tokens[0].comments[0].own_line);
        assert!(tokens[0].blank_before);
        let y = &tokens[4];
        assert_eq!(y.comments.len(), 2);
        assert!(!y.comments[0].own_line);
        assert!(y.comments[1].own_line);
    }

    #[test]
    fn errors() {
        let code = |src: &str| lex(src, 0).err().map(|d| d.code);
        assert_eq!(code("\"abc"), Some(codes::UNTERMINATED_STRING));
        assert_eq!(code("\"abc\nx\""), Some(codes::UNTERMINATED_STRING));
        assert_eq!(code("\"${abc"), Some(codes::UNTERMINATED_INTERPOLATION));
        assert_eq!(code(r#""\q""#), Some(codes::BAD_ESCAPE));
        assert_eq!(code(r#""\u{110000}""#), Some(codes::BAD_ESCAPE));
        assert_eq!(code(r#""\u1234""#), Some(codes::BAD_ESCAPE));
        assert_eq!(code("x ; y"), Some(codes::UNEXPECTED_CHAR));
        assert_eq!(code("0o8"), Some(codes::BAD_NUMBER));
        assert_eq!(code(r#""\""#), Some(codes::UNTERMINATED_STRING));
    }
}

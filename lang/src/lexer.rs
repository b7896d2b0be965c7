//! Lexer: source text → tokens with byte spans. Comments and line breaks are kept as trivia on the
//! token that follows them, so the formatter can put them back.
//!
//! Strings are lexed into `StrOpen`, raw `StrText` pieces (escapes checked but not yet decoded),
//! `InterpOpen` … tokens … `InterpClose`, and `StrClose`; a stack of open strings tracks nested
//! interpolations without recursion.
//!
//! Scanning is built on nom: trivia, every token, every piece of a string body and every escape is
//! a small combinator parser over a `nom_locate` span, which carries the absolute byte offset and the
//! file id so that each parser can build its own spans and diagnostics. A lexical error is a
//! `nom::Err::Failure` holding the finished [`Diag`], so no `alt` backtracks past it. The escape
//! grammar is also what `strings::unescape` decodes with (through `decode_escape`).
//!
//! Two parts stay hand-written, on purpose:
//! - the driver loop (`Lexer::run`), which picks the parser for the next step. That choice depends
//!   on state outside the text at hand (inside a string body or not; whether a `}` closes an
//!   interpolation, which depends on its brace depth), and the loop keeps that state on an explicit
//!   stack rather than recursing into nested `"${ "${ … }" }"`, so deep nesting cannot overflow the
//!   stack however the combinators are built;
//! - `parse_int`, which converts a number that nom has delimited: arithmetic with a diagnosis per bad
//!   digit, not scanning.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_until, take_while, take_while1};
use nom::character::complete::{anychar, char, one_of, satisfy};
use nom::combinator::{eof, map, map_opt, not, recognize, value, verify};
use nom::error::{ErrorKind, ParseError};
use nom::multi::many1_count;
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};
use nom_locate::LocatedSpan;

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

/// What the lexer reads: the rest of the source, carrying its absolute byte offset and the file id
/// so that every parser can build [`Span`]s (and finished diagnostics) on its own.
type Input<'s> = LocatedSpan<&'s str, FileId>;

type LexResult<'s, O> = IResult<Input<'s>, O, LexError>;

/// The error type of the nom parsers. `Backtrack` lets `alt` try its next branch; a lexical error is
/// a finished diagnostic, raised as `nom::Err::Failure` so that nothing backtracks over it.
#[derive(Debug)]
enum LexError {
    Backtrack,
    Diag(Box<Diag>),
}

impl<I> ParseError<I> for LexError {
    fn from_error_kind(_: I, _: ErrorKind) -> Self {
        LexError::Backtrack
    }

    fn append(_: I, _: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Stops lexing with `diag`.
fn fail<'s, O>(diag: Diag) -> LexResult<'s, O> {
    Err(nom::Err::Failure(LexError::Diag(Box::new(diag))))
}

/// The span from the start of `from` to the start of `to` (`to` is what is left after `from`).
fn span_between(from: &Input, to: &Input) -> Span {
    Span::new(from.extra, from.location_offset(), to.location_offset())
}

/// The span of the first `len` bytes of `input`.
fn span_at(input: &Input, len: usize) -> Span {
    let start = input.location_offset();
    Span::new(input.extra, start, start + len)
}

const TRIPLE_QUOTE: &str = "\"\"\"";

// ---- code: tokens between strings (and inside interpolations) ----

/// Whitespace, a line break or a `#` comment.
#[derive(Clone)]
enum Trivia<'s> {
    Space,
    Newline,
    /// The comment up to (not including) its line break.
    Comment(Input<'s>),
}

fn trivia(i: Input) -> LexResult<Trivia> {
    alt((
        value(Trivia::Newline, char('\n')),
        value(
            Trivia::Space,
            take_while1(|c| matches!(c, ' ' | '\t' | '\r')),
        ),
        map(
            recognize((char('#'), take_till(|c| c == '\n'))),
            Trivia::Comment,
        ),
    ))
    .parse(i)
}

/// One token outside string bodies. `{` and `}` come out as `LBrace` and `RBrace`: whether a `}`
/// closes an interpolation is up to the driver, which knows the brace depth.
fn code_token(i: Input) -> LexResult<Tok> {
    // Longer operators before their one-character prefixes (`==` before `=`, `"""` before `"`);
    // otherwise the first character decides, and the common tokens come first.
    alt((
        word,
        value(Tok::EqEq, tag("==")),
        value(Tok::NotEq, tag("!=")),
        value(Tok::Merge, tag("//")),
        map_opt(anychar, punctuation),
        value(Tok::StrOpen { triple: true }, tag(TRIPLE_QUOTE)),
        value(Tok::StrOpen { triple: false }, char('"')),
        number,
        value(Tok::Eof, eof),
        unexpected_char,
    ))
    .parse(i)
}

fn punctuation(c: char) -> Option<Tok> {
    Some(match c {
        '{' => Tok::LBrace,
        '}' => Tok::RBrace,
        '[' => Tok::LBracket,
        ']' => Tok::RBracket,
        '(' => Tok::LParen,
        ')' => Tok::RParen,
        ',' => Tok::Comma,
        '.' => Tok::Dot,
        '+' => Tok::Plus,
        '=' => Tok::Eq,
        _ => return None,
    })
}

/// An identifier or keyword: `[A-Za-z_][A-Za-z0-9_-]*`.
fn word(i: Input) -> LexResult<Tok> {
    value(
        Tok::Word,
        (
            satisfy(|c| c == '_' || c.is_ascii_alphabetic()),
            take_while(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        ),
    )
    .parse(i)
}

/// An integer literal: a digit, then every letter, digit and `_` that follows (so that `12ab` is one
/// malformed number rather than `12` and `ab`), checked and converted by [`parse_int`].
fn number(i: Input) -> LexResult<Tok> {
    let (rest, text) = recognize((
        satisfy(|c| c.is_ascii_digit()),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)?;
    match parse_int(text.fragment()) {
        Ok(n) => Ok((rest, Tok::Int(n))),
        Err(e) => Err(nom::Err::Failure(LexError::Diag(
            e.into_diag(span_between(&text, &rest), text.fragment()),
        ))),
    }
}

/// The last resort of [`code_token`]: a character that starts no token.
fn unexpected_char(i: Input) -> LexResult<Tok> {
    let (_, c) = anychar(i)?;
    fail(unexpected_char_diag(c, span_at(&i, c.len_utf8())))
}

fn unexpected_char_diag(c: char, span: Span) -> Diag {
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
    let diag = Diag::new(
        codes::UNEXPECTED_CHAR,
        span,
        format!("unexpected character {printable}"),
    )
    .label(label);
    match help {
        Some(help) => diag.help(help),
        None => diag,
    }
}

// ---- string bodies ----

/// What comes next in a string body.
#[derive(Clone, Copy)]
enum Piece {
    /// Text, escapes included (checked, not decoded).
    Text,
    /// `${`
    InterpOpen,
    /// The closing quote(s).
    Close,
}

/// The next piece of the body of the innermost open string (`triple` for `"""`, opened at `open`).
/// Never backtracks: when no piece fits, the string is unterminated.
fn string_piece<'s>(
    triple: bool,
    open: Span,
) -> impl Parser<Input<'s>, Output = Piece, Error = LexError> {
    alt((
        value(Piece::Close, tag(if triple { TRIPLE_QUOTE } else { "\"" })),
        value(Piece::InterpOpen, tag("${")),
        value(Piece::Text, many1_count(text_atom(triple))),
        move |i| unterminated_string(i, triple, open),
    ))
}

/// A run of plain characters, one escape, a `$` that does not start `${`, or (in a `"""` string) a
/// line break or a quote that does not close it.
fn text_atom<'s>(triple: bool) -> impl Parser<Input<'s>, Output = (), Error = LexError> {
    alt((
        value((), take_while1(|c| !matches!(c, '"' | '\\' | '$' | '\n'))),
        value((), escape),
        value((), (char('$'), not(char('{')))),
        value(
            (),
            (
                not(tag(TRIPLE_QUOTE)),
                satisfy(move |c| triple && (c == '"' || c == '\n')),
            ),
        ),
    ))
}

/// Reached when no piece fits: the end of input, or a line break in a `"` string.
fn unterminated_string<'s>(i: Input<'s>, triple: bool, open: Span) -> LexResult<'s, Piece> {
    let diag = Diag::new(codes::UNTERMINATED_STRING, open, "unterminated string");
    fail(if !triple && i.fragment().starts_with('\n') {
        diag.label("this string is not closed on its line")
            .help("close it with `\"`; for text spanning lines use `\"\"\"` or `\\n`")
    } else {
        diag.label("this string is never closed").help(if triple {
            "close it with `\"\"\"`"
        } else {
            "close it with `\"`"
        })
    })
}

/// One escape sequence and the character it stands for. This is the one grammar of escapes: the
/// lexer only checks them (string text stays encoded in the tokens), `strings::unescape` decodes
/// them through [`decode_escape`]. A backslash at the end of input is taken alone (`None`), so that
/// the string is reported as unterminated.
fn escape(i: Input) -> LexResult<Option<char>> {
    let (rest, _) = char('\\').parse(i)?;
    alt((
        map(one_of("ntr\\\"$"), |c| {
            Some(match c {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                c => c,
            })
        }),
        value(None, eof),
        map(
            preceded(char('u'), |after_u| unicode_escape(after_u, i)),
            Some,
        ),
        |at| unknown_escape(at, i),
    ))
    .parse(rest)
}

/// Decodes the escape sequence at the start of `text`: the character and the sequence's length in
/// bytes, or `None` when `text` does not start with a valid escape.
pub(crate) fn decode_escape(text: &str) -> Option<(char, usize)> {
    match escape(Input::new_extra(text, 0)) {
        Ok((rest, Some(c))) => Some((c, rest.location_offset())),
        _ => None,
    }
}

/// The rest of a `\u{...}` escape (after `\u`) that starts at `backslash`.
fn unicode_escape<'s>(i: Input<'s>, backslash: Input<'s>) -> LexResult<'s, char> {
    // At most 8 bytes up to the first `}`: longer bodies are malformed rather than invalid.
    let braced: LexResult<Input> = delimited(
        char('{'),
        verify(take_until("}"), |hex: &Input| hex.fragment().len() <= 8),
        char('}'),
    )
    .parse(i);
    match braced {
        Ok((rest, hex)) => {
            let hex = *hex.fragment();
            let valid = (!hex.is_empty() && hex.len() <= 6)
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()
                .and_then(char::from_u32);
            if let Some(c) = valid {
                return Ok((rest, c));
            }
            fail(
                Diag::new(
                    codes::BAD_ESCAPE,
                    span_between(&backslash, &rest),
                    format!("invalid unicode escape `\\u{{{hex}}}`"),
                )
                .label("not a Unicode scalar value")
                .help("write 1 to 6 hex digits naming a character, e.g. `\\u{1F600}`"),
            )
        }
        Err(_) => fail(
            Diag::new(
                codes::BAD_ESCAPE,
                span_at(&backslash, 2),
                "malformed unicode escape",
            )
            .label("expected `{` and hex digits after `\\u`")
            .help("write e.g. `\\u{1F600}`"),
        ),
    }
}

/// The character after the backslash at `backslash` starts no escape.
fn unknown_escape<'s, O>(i: Input<'s>, backslash: Input<'s>) -> LexResult<'s, O> {
    let (_, other) = anychar(i)?;
    fail(
        Diag::new(
            codes::BAD_ESCAPE,
            span_at(&backslash, 1 + other.len_utf8()),
            format!("unknown escape sequence `\\{other}`"),
        )
        .label("unknown escape")
        .help("valid escapes are `\\n`, `\\t`, `\\r`, `\\\\`, `\\\"`, `\\$` and `\\u{...}`; write `\\\\` for a backslash"),
    )
}

// ---- the driver ----

struct OpenString {
    triple: bool,
    open: Span,
    /// `Some(span of "${", brace depth)` while lexing an interpolation.
    interp: Option<(Span, usize)>,
}

struct Lexer<'s> {
    input: Input<'s>,
    tokens: Vec<Token>,
    comments: Vec<Comment>,
    /// Newlines since the last token or comment.
    newlines: usize,
    strings: Vec<OpenString>,
}

pub(crate) fn lex(src: &str, file: FileId) -> DResult<Vec<Token>> {
    let mut lx = Lexer {
        input: Input::new_extra(src, file),
        tokens: Vec::new(),
        comments: Vec::new(),
        newlines: 0,
        strings: Vec::new(),
    };
    lx.run()?;
    Ok(lx.tokens)
}

impl<'s> Lexer<'s> {
    fn push(&mut self, kind: Tok, span: Span) {
        let comments = std::mem::take(&mut self.comments);
        let blank_before = self.newlines >= 2;
        self.newlines = 0;
        self.tokens.push(Token {
            kind,
            span,
            comments,
            blank_before,
        });
    }

    /// Runs `parser` at the current position and moves past what it read.
    fn next<O>(
        &mut self,
        mut parser: impl Parser<Input<'s>, Output = O, Error = LexError>,
    ) -> DResult<(Span, O)> {
        match parser.parse(self.input) {
            Ok((rest, out)) => {
                let span = span_between(&self.input, &rest);
                self.input = rest;
                Ok((span, out))
            }
            Err(
                nom::Err::Failure(LexError::Diag(diag)) | nom::Err::Error(LexError::Diag(diag)),
            ) => Err(diag),
            // Not reached: `code_token` and `string_piece` end in branches that always succeed or
            // fail with a diagnostic. Should that change, blame what is here.
            Err(_) => Err(Box::new(match self.input.fragment().chars().next() {
                Some(c) => unexpected_char_diag(c, span_at(&self.input, c.len_utf8())),
                None => Diag::new(
                    codes::UNEXPECTED_CHAR,
                    span_at(&self.input, 0),
                    "unexpected end of input",
                )
                .label("the lexer cannot go on here"),
            })),
        }
    }

    fn run(&mut self) -> DResult<()> {
        loop {
            if let Some(open) = self.strings.last().filter(|s| s.interp.is_none()) {
                let (span, piece) = self.next(string_piece(open.triple, open.open))?;
                self.string_piece(span, piece);
                continue;
            }
            self.trivia();
            let (span, tok) = self.next(code_token)?;
            match tok {
                Tok::Eof => {
                    if let Some(open) = self.strings.last() {
                        return Err(unterminated_interpolation(open));
                    }
                    self.push(Tok::Eof, span);
                    return Ok(());
                }
                Tok::StrOpen { triple } => {
                    self.push(tok, span);
                    self.strings.push(OpenString {
                        triple,
                        open: span,
                        interp: None,
                    });
                }
                Tok::LBrace => {
                    if let Some((_, depth)) =
                        self.strings.last_mut().and_then(|s| s.interp.as_mut())
                    {
                        *depth += 1;
                    }
                    self.push(tok, span);
                }
                Tok::RBrace => {
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
                        self.push(Tok::InterpClose, span);
                    } else {
                        self.push(tok, span);
                    }
                }
                _ => self.push(tok, span),
            }
        }
    }

    fn string_piece(&mut self, span: Span, piece: Piece) {
        match piece {
            Piece::Text => self.push(Tok::StrText, span),
            Piece::Close => {
                self.push(Tok::StrClose, span);
                self.strings.pop();
            }
            Piece::InterpOpen => {
                self.push(Tok::InterpOpen, span);
                if let Some(open) = self.strings.last_mut() {
                    open.interp = Some((span, 0));
                }
            }
        }
    }

    /// Skips whitespace and comments, recording comments and line breaks.
    fn trivia(&mut self) {
        // `trivia` only ever backtracks: whatever it does not match is left for `code_token`.
        while let Ok((rest, item)) = trivia(self.input) {
            match item {
                Trivia::Space => {}
                Trivia::Newline => self.newlines += 1,
                Trivia::Comment(comment) => {
                    let text = comment.fragment().trim_end().to_owned();
                    let own_line =
                        self.newlines > 0 || (self.tokens.is_empty() && self.comments.is_empty());
                    let blank_before = self.newlines >= 2;
                    self.newlines = 0;
                    let span = span_at(&comment, text.len());
                    self.comments.push(Comment {
                        text,
                        span,
                        own_line,
                        blank_before,
                    });
                }
            }
            self.input = rest;
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
    pub(crate) fn into_diag(self, span: Span, text: &str) -> Box<Diag> {
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
    fn spans() {
        let src = "a \"b${c}\\u{41}\" # x\n\"\"\"\n  q\n  \"\"\"";
        let spans: Vec<(Tok, &str)> = match lex(src, 0) {
            Ok(tokens) => tokens
                .iter()
                .map(|t| (t.kind, &src[t.span.start..t.span.end]))
                .collect(),
            Err(e) => panic!("{}", e.message),
        };
        use Tok::*;
        assert_eq!(
            spans,
            vec![
                (Word, "a"),
                (StrOpen { triple: false }, "\""),
                (StrText, "b"),
                (InterpOpen, "${"),
                (Word, "c"),
                (InterpClose, "}"),
                (StrText, "\\u{41}"),
                (StrClose, "\""),
                (StrOpen { triple: true }, "\"\"\""),
                (StrText, "\n  q\n  "),
                (StrClose, "\"\"\""),
                (Eof, ""),
            ]
        );
    }

    #[test]
    fn escapes_decode_with_their_length() {
        assert_eq!(decode_escape("\\n!"), Some(('\n', 2)));
        assert_eq!(decode_escape("\\u{1F600}!"), Some(('\u{1F600}', 9)));
        assert_eq!(decode_escape("\\q"), None);
        assert_eq!(decode_escape("\\u{110000}"), None);
        assert_eq!(decode_escape("\\"), None);
        assert_eq!(decode_escape("n"), None);
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
        assert_eq!(code("\"\"\"\nabc"), Some(codes::UNTERMINATED_STRING));
        assert_eq!(code("\"${ {} \"${x\""), Some(codes::UNTERMINATED_STRING));
        assert_eq!(
            code("\"${ {} \"${x}\""),
            Some(codes::UNTERMINATED_INTERPOLATION)
        );
        assert_eq!(code("12ab"), Some(codes::BAD_NUMBER));
        assert_eq!(code("1 ! 2"), Some(codes::UNEXPECTED_CHAR));
    }
}

//! Logical lines (comments removed, `+` continuations joined, every byte
//! mapped back to its source line and column) and the tokens of one line.

/// A 1-based source position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One card, possibly spread over several physical lines.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogicalLine {
    pub text: String,
    /// `pos[i]` is the source position of byte `i` of `text`;
    /// `pos[text.len()]` is just past the last character.
    pub pos: Vec<Pos>,
    /// The line began with `+` but no card came before it.
    pub orphan_continuation: bool,
}

impl LogicalLine {
    /// Join a `+` line: the '+' becomes a separating space, then `rest`
    /// (`positions` covers `rest` plus its end-of-text sentinel).
    fn append_continuation(&mut self, plus: Pos, rest: &str, positions: &[Pos]) {
        self.pos.pop();
        self.text.push(' ');
        self.pos.push(plus);
        self.text.push_str(rest);
        self.pos.extend_from_slice(positions);
    }
}

pub(crate) struct Lexed {
    pub title: Option<String>,
    pub lines: Vec<LogicalLine>,
}

/// Where a physical line's content ends once `;` and ` $` comments are cut.
fn comment_start(line: &str) -> usize {
    let mut previous_is_space = true;
    for (i, c) in line.char_indices() {
        if c == ';' || (c == '$' && previous_is_space) {
            return i;
        }
        previous_is_space = c.is_whitespace();
    }
    line.len()
}

/// Split `text` into logical lines. With `has_title`, the first physical
/// line is the title (as in SPICE); included files have none.
pub(crate) fn logical_lines(text: &str, has_title: bool) -> Lexed {
    let mut title = None;
    let mut lines: Vec<LogicalLine> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line_number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if has_title && index == 0 {
            title = Some(raw.trim().to_string());
            continue;
        }
        // Column (1-based, in characters) of every byte, plus one past the end.
        let mut cols = Vec::with_capacity(raw.len() + 1);
        let mut col = 0u32;
        for (_, c) in raw.char_indices() {
            col = col.saturating_add(1);
            cols.extend(std::iter::repeat_n(col, c.len_utf8()));
        }
        cols.push(col.saturating_add(1));
        let positions: Vec<Pos> = cols
            .iter()
            .map(|&col| Pos {
                line: line_number,
                col,
            })
            .collect();

        let content_end = comment_start(raw);
        let start = raw.len() - raw.trim_start().len();
        let content = raw[start..content_end].trim_end();
        if content.is_empty() || content.starts_with('*') {
            continue;
        }
        let end = start + content.len();
        if let Some(rest) = content.strip_prefix('+') {
            let rest_start = start + 1;
            match lines.last_mut() {
                Some(previous) => {
                    previous.append_continuation(
                        positions[start],
                        rest,
                        &positions[rest_start..=end],
                    );
                }
                None => lines.push(LogicalLine {
                    text: content.to_string(),
                    pos: positions[start..=end].to_vec(),
                    orphan_continuation: true,
                }),
            }
        } else {
            lines.push(LogicalLine {
                text: content.to_string(),
                pos: positions[start..=end].to_vec(),
                orphan_continuation: false,
            });
        }
    }
    Lexed { title, lines }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// Anything else up to whitespace or one of `=(),{}'"`.
    Word,
    Eq,
    LParen,
    RParen,
    Comma,
    /// `{...}`; the range includes the braces.
    Brace,
    /// `'...'`; the range includes the quotes.
    Quote,
    /// `"..."`; the range includes the quotes.
    Str,
}

/// A token: its kind and byte range in the logical line's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The text between the delimiters of a Brace, Quote or Str token.
    pub fn inner_range(&self) -> (usize, usize) {
        match self.kind {
            TokKind::Brace | TokKind::Quote | TokKind::Str => (self.start + 1, self.end - 1),
            _ => (self.start, self.end),
        }
    }
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '=' | '(' | ')' | ',' | '{' | '}' | '\'' | '"')
}

/// Tokens of one logical line. Parentheses must balance; braces and quotes
/// must close. An error is (byte offset, message).
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, (usize, String)> {
    let mut tokens = Vec::new();
    let mut open_parens: Vec<usize> = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let single = |kind| Token {
            kind,
            start,
            end: start + 1,
        };
        match c {
            c if c.is_whitespace() => {}
            '=' => tokens.push(single(TokKind::Eq)),
            ',' => tokens.push(single(TokKind::Comma)),
            '(' => {
                open_parens.push(start);
                tokens.push(single(TokKind::LParen));
            }
            ')' => {
                if open_parens.pop().is_none() {
                    return Err((start, "unmatched ')'".to_string()));
                }
                tokens.push(single(TokKind::RParen));
            }
            '}' => return Err((start, "unmatched '}'".to_string())),
            '{' | '\'' | '"' => {
                let (close, kind, what) = match c {
                    '{' => ('}', TokKind::Brace, "'{' (missing '}')"),
                    '\'' => ('\'', TokKind::Quote, "quote ' (missing closing ')"),
                    _ => ('"', TokKind::Str, "string (missing closing \")"),
                };
                let Some(offset) = text[start + 1..].find(close) else {
                    return Err((start, format!("unclosed {what}")));
                };
                let end = start + 1 + offset + 1;
                while chars.peek().is_some_and(|&(i, _)| i < end) {
                    chars.next();
                }
                tokens.push(Token { kind, start, end });
            }
            _ => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, next)) = chars.peek() {
                    if is_delimiter(next) {
                        break;
                    }
                    end = i + next.len_utf8();
                    chars.next();
                }
                tokens.push(Token {
                    kind: TokKind::Word,
                    start,
                    end,
                });
            }
        }
    }
    if let Some(&open) = open_parens.last() {
        return Err((open, "unclosed '(' (missing ')')".to_string()));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lexed: &Lexed) -> Vec<&str> {
        lexed.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn title_comments_and_blank_lines() {
        let lexed = logical_lines(
            "my title\n* comment\n\n  R1 a b 1k ; note\nC1 a 0 1u $ cap\nV1$x a 0 1\n",
            true,
        );
        assert_eq!(lexed.title.as_deref(), Some("my title"));
        assert_eq!(texts(&lexed), vec!["R1 a b 1k", "C1 a 0 1u", "V1$x a 0 1"]);
        // Leading spaces are dropped but columns still count them.
        assert_eq!(lexed.lines[0].pos[0], Pos { line: 4, col: 3 });
        assert_eq!(lexed.lines[1].pos[0], Pos { line: 5, col: 1 });
    }

    #[test]
    fn dollar_at_line_start_is_a_comment() {
        let lexed = logical_lines("t\n$ whole line\n   $ also\nR1 a b 1\n", true);
        assert_eq!(texts(&lexed), vec!["R1 a b 1"]);
    }

    #[test]
    fn continuation_lines_keep_positions() {
        let text = "title\nV1 a 0\n* a comment between\n+ SIN(0 1\n   +  1k)\n";
        let lexed = logical_lines(text, true);
        assert_eq!(texts(&lexed), vec!["V1 a 0  SIN(0 1   1k)"]);
        let line = &lexed.lines[0];
        let sin = line.text.find("SIN").unwrap();
        assert_eq!(line.pos[sin], Pos { line: 4, col: 3 });
        let k = line.text.find("1k").unwrap();
        assert_eq!(line.pos[k], Pos { line: 5, col: 7 });
        // End of line is just past the last character of the last piece.
        assert_eq!(line.pos[line.text.len()], Pos { line: 5, col: 10 });
    }

    #[test]
    fn orphan_continuation_is_flagged() {
        let lexed = logical_lines("title\n+ R1 a b 1\nR2 a b 1\n", true);
        assert!(lexed.lines[0].orphan_continuation);
        assert!(!lexed.lines[1].orphan_continuation);
    }

    #[test]
    fn crlf_and_no_title() {
        let lexed = logical_lines("R1 a b 1\r\nR2 a b 2\r\n", false);
        assert_eq!(lexed.title, None);
        assert_eq!(texts(&lexed), vec!["R1 a b 1", "R2 a b 2"]);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let lexed = logical_lines("t\nRµ a b 1\n", true);
        let line = &lexed.lines[0];
        let a = line.text.find(" a").unwrap() + 1;
        assert_eq!(line.pos[a].col, 4);
    }

    fn kinds(text: &str) -> Vec<(TokKind, &str)> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, &text[t.start..t.end]))
            .collect()
    }

    #[test]
    fn tokens() {
        use TokKind::*;
        assert_eq!(
            kinds("X1 a b sub params: k={2*p} j='p+1' .include \"f g.cir\" v(a,b)=1"),
            vec![
                (Word, "X1"),
                (Word, "a"),
                (Word, "b"),
                (Word, "sub"),
                (Word, "params:"),
                (Word, "k"),
                (Eq, "="),
                (Brace, "{2*p}"),
                (Word, "j"),
                (Eq, "="),
                (Quote, "'p+1'"),
                (Word, ".include"),
                (Str, "\"f g.cir\""),
                (Word, "v"),
                (LParen, "("),
                (Word, "a"),
                (Comma, ","),
                (Word, "b"),
                (RParen, ")"),
                (Eq, "="),
                (Word, "1"),
            ]
        );
    }

    #[test]
    fn tokenizer_errors() {
        assert_eq!(tokenize("a ) b"), Err((2, "unmatched ')'".to_string())));
        assert_eq!(
            tokenize("SIN(0 (1 2"),
            Err((6, "unclosed '(' (missing ')')".to_string()))
        );
        assert_eq!(
            tokenize("R1 a b {1+2"),
            Err((7, "unclosed '{' (missing '}')".to_string()))
        );
        assert_eq!(tokenize("R1 a b 1}"), Err((8, "unmatched '}'".to_string())));
        assert!(tokenize("R1 a b 'x").is_err());
        assert!(tokenize(".include \"x").is_err());
    }
}

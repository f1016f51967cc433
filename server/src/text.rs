//! Positions: conversions between byte offsets in a rope and LSP-style line/column pairs.
//!
//! This is the only module that knows how columns are counted (UTF-8 bytes, UTF-16 code units or
//! Unicode scalar values). It never fails: positions past the end of a line are clamped to the line
//! end, as the LSP specification asks ("If the character value is greater than the line length it
//! defaults back to the line length"), and a line past the end of the document yields `None`.
//! Lines end at `\n`, `\r\n` or `\r` only (ropey is built without `unicode_lines` for that reason).

use ropey::Rope;

/// How the client counts columns, negotiated once in `initialize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

/// A zero-based line and a column counted in the negotiated encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

/// Byte offset of the end of line `line`'s content, before its terminator.
fn line_content_end(rope: &Rope, line: usize) -> usize {
    let start = rope.line_to_byte(line);
    let slice = rope.line(line);
    let mut len = slice.len_bytes();
    // A line ends with at most one terminator: "\r\n", "\n" or "\r".
    if len > 0 && slice.byte(len - 1) == b'\n' {
        len -= 1;
        if len > 0 && slice.byte(len - 1) == b'\r' {
            len -= 1;
        }
    } else if len > 0 && slice.byte(len - 1) == b'\r' {
        len -= 1;
    }
    start + len
}

/// Converts a line/column to a byte offset. `None` when the line does not exist; a column past the
/// line end is clamped to it, and a column inside a multi-unit character rounds down to its start.
pub fn offset(rope: &Rope, pos: LineCol, encoding: PositionEncoding) -> Option<usize> {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return None;
    }
    let start = rope.line_to_byte(line);
    let end = line_content_end(rope, line);
    let col = pos.col as usize;
    let byte = match encoding {
        PositionEncoding::Utf8 => {
            let byte = (start + col).min(end);
            // Round down to a character boundary.
            rope.char_to_byte(rope.byte_to_char(byte))
        }
        PositionEncoding::Utf16 => {
            let start_cu = rope.char_to_utf16_cu(rope.byte_to_char(start));
            let end_cu = rope.char_to_utf16_cu(rope.byte_to_char(end));
            let target = (start_cu + col).min(end_cu);
            rope.char_to_byte(rope.utf16_cu_to_char(target))
        }
        PositionEncoding::Utf32 => {
            let start_char = rope.byte_to_char(start);
            let end_char = rope.byte_to_char(end);
            rope.char_to_byte((start_char + col).min(end_char))
        }
    };
    Some(byte)
}

/// Converts a byte offset to a line/column. Offsets past the end map to the end of the document;
/// an offset inside a character maps to that character's start.
pub fn position(rope: &Rope, byte: usize, encoding: PositionEncoding) -> LineCol {
    let byte = byte.min(rope.len_bytes());
    let line = rope.byte_to_line(byte);
    let line_start = rope.line_to_byte(line);
    // Near the line's start (nearly always), counting its characters costs less than the four
    // more walks down the rope below; a byte inside a character counts from that character's start.
    if byte - line_start <= 256 {
        let mut col = 0;
        let mut at = line_start;
        for ch in rope.line(line).chars() {
            at += ch.len_utf8();
            if at > byte {
                break;
            }
            col += match encoding {
                PositionEncoding::Utf8 => ch.len_utf8(),
                PositionEncoding::Utf16 => ch.len_utf16(),
                PositionEncoding::Utf32 => 1,
            };
        }
        return LineCol { line: line as u32, col: col as u32 };
    }
    position_by_walks(rope, byte, encoding)
}

/// `position` from the rope's indexes alone, whatever the line's length.
fn position_by_walks(rope: &Rope, byte: usize, encoding: PositionEncoding) -> LineCol {
    let char_idx = rope.byte_to_char(byte);
    let byte = rope.char_to_byte(char_idx);
    let line = rope.byte_to_line(byte);
    let line_start = rope.line_to_byte(line);
    let col = match encoding {
        PositionEncoding::Utf8 => byte - line_start,
        PositionEncoding::Utf16 => {
            rope.char_to_utf16_cu(char_idx) - rope.char_to_utf16_cu(rope.byte_to_char(line_start))
        }
        PositionEncoding::Utf32 => char_idx - rope.byte_to_char(line_start),
    };
    LineCol { line: line as u32, col: col as u32 }
}

/// Tree-sitter's point for a byte offset: a row and a byte column.
pub fn point(rope: &Rope, byte: usize) -> tree_sitter::Point {
    let byte = byte.min(rope.len_bytes());
    let row = rope.byte_to_line(byte);
    tree_sitter::Point { row, column: byte - rope.line_to_byte(row) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lc(line: u32, col: u32) -> LineCol {
        LineCol { line, col }
    }

    #[test]
    fn converts_positions_table() {
        use PositionEncoding::*;
        // (text, position, encoding, expected byte offset)
        let cases: &[(&str, LineCol, PositionEncoding, Option<usize>)] = &[
            ("abc", lc(0, 1), Utf16, Some(1)),
            ("abc", lc(0, 99), Utf16, Some(3)),
            ("abc", lc(1, 0), Utf16, None),
            ("abc\n", lc(1, 0), Utf16, Some(4)),
            ("a\r\nb", lc(0, 5), Utf8, Some(1)),
            ("a\r\nb", lc(1, 0), Utf8, Some(3)),
            ("a\rb", lc(1, 1), Utf8, Some(3)),
            // CJK: 3 UTF-8 bytes, 1 UTF-16 unit each.
            ("张量x", lc(0, 2), Utf16, Some(6)),
            ("张量x", lc(0, 6), Utf8, Some(6)),
            ("张量x", lc(0, 4), Utf8, Some(3)),
            // Emoji: 4 UTF-8 bytes, 2 UTF-16 units, 1 scalar.
            ("🔥x", lc(0, 2), Utf16, Some(4)),
            ("🔥x", lc(0, 1), Utf16, Some(0)),
            ("🔥x", lc(0, 1), Utf32, Some(4)),
            ("🔥x", lc(0, 9), Utf32, Some(5)),
            ("", lc(0, 3), Utf16, Some(0)),
            // U+2028 is not a line break for LSP.
            ("a\u{2028}b\nc", lc(1, 0), Utf16, Some(6)),
        ];
        for (text, pos, encoding, expected) in cases {
            let rope = Rope::from_str(text);
            assert_eq!(offset(&rope, *pos, *encoding), *expected, "{text:?} {pos:?} {encoding:?}");
        }
    }

    #[test]
    fn positions_from_offsets() {
        let rope = Rope::from_str("x = 1\r\n张🔥 = torch\n");
        assert_eq!(position(&rope, 7, PositionEncoding::Utf16), lc(1, 0));
        assert_eq!(position(&rope, 14, PositionEncoding::Utf16), lc(1, 3));
        assert_eq!(position(&rope, 14, PositionEncoding::Utf8), lc(1, 7));
        assert_eq!(position(&rope, 14, PositionEncoding::Utf32), lc(1, 2));
        // Inside the emoji: rounds down to its start.
        assert_eq!(position(&rope, 12, PositionEncoding::Utf16), lc(1, 1));
        assert_eq!(position(&rope, 999, PositionEncoding::Utf16), lc(2, 0));
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("a"),
                Just("é"),
                Just("张"),
                Just("🔥"),
                Just("\n"),
                Just("\r\n"),
                Just("\r"),
                Just(" "),
                Just("\u{2028}"),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        /// Counting a line's characters and walking the rope's indexes agree on every byte,
        /// inside characters too.
        #[test]
        fn counted_columns_equal_walked_ones(text in text_strategy()) {
            let rope = Rope::from_str(&text);
            for encoding in [PositionEncoding::Utf8, PositionEncoding::Utf16, PositionEncoding::Utf32] {
                for byte in 0..=text.len() {
                    prop_assert_eq!(position(&rope, byte, encoding), position_by_walks(&rope, byte, encoding), "byte {}", byte);
                }
            }
        }

        /// Every character boundary survives a round trip through every encoding.
        #[test]
        fn round_trips(text in text_strategy()) {
            let rope = Rope::from_str(&text);
            for encoding in [PositionEncoding::Utf8, PositionEncoding::Utf16, PositionEncoding::Utf32] {
                for (byte, _) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
                    let pos = position(&rope, byte, encoding);
                    let back = offset(&rope, pos, encoding).unwrap();
                    // Offsets on a line terminator's second byte ("\r\n") map to the line end.
                    let expected = if text[..byte].ends_with('\r') && text[byte..].starts_with('\n') {
                        byte - 1
                    } else {
                        byte
                    };
                    prop_assert_eq!(back, expected);
                }
            }
        }

        /// Any line/column resolves to a character boundary inside the text, never panics.
        #[test]
        fn arbitrary_positions_are_clamped(text in text_strategy(), line in 0u32..50, col in 0u32..200) {
            let rope = Rope::from_str(&text);
            for encoding in [PositionEncoding::Utf8, PositionEncoding::Utf16, PositionEncoding::Utf32] {
                if let Some(byte) = offset(&rope, lc(line, col), encoding) {
                    prop_assert!(byte <= text.len());
                    prop_assert!(text.is_char_boundary(byte));
                } else {
                    prop_assert!(line as usize >= rope.len_lines());
                }
            }
        }
    }
}

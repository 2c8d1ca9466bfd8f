//! Source positions: from byte offsets to cedar-go's `(offset, line, column)`.
//!
//! cedar-policy has no public accessor for a policy's position, so it is recovered from the
//! exact source slice `Policy::to_cedar()` returns for text-parsed policies (verified against
//! the Go project's reason strings).

/// 1-based line and 1-based character column of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let prefix = text.get(..offset).unwrap_or(text);
    let line = prefix.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let column = prefix.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Finds policy slices in document order. Each search starts after the previous match, so two
/// identical policies in one document get their own positions. Lines and columns are counted
/// incrementally, so locating every policy of a large document stays linear in its size.
pub struct SliceLocator<'a> {
    text: &'a str,
    cursor: usize,
    /// Line and column at `counted`.
    counted: usize,
    line: usize,
    column: usize,
}

impl<'a> SliceLocator<'a> {
    pub fn new(text: &'a str) -> Self {
        SliceLocator { text, cursor: 0, counted: 0, line: 1, column: 1 }
    }

    /// `(offset, line, column)` of the next occurrence of `slice`, or `None` when it is not in
    /// the text (which happens only for policies that were not parsed from this text).
    pub fn locate(&mut self, slice: &str) -> Option<(usize, usize, usize)> {
        let rest = self.text.get(self.cursor..)?;
        let found = rest.find(slice)? + self.cursor;
        for c in self.text.get(self.counted..found)?.chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.counted = found;
        self.cursor = found + slice.len();
        Some((found, self.line, self.column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "// é\n  permit";
        let off = text.find("permit").unwrap();
        assert_eq!(line_column(text, off), (2, 3));
        assert_eq!(line_column("\npermit", 1), (2, 1));
        assert_eq!(line_column("permit", 0), (1, 1));
    }

    #[test]
    fn locator_moves_forward() {
        let text = "a;a;";
        let mut loc = SliceLocator::new(text);
        assert_eq!(loc.locate("a;"), Some((0, 1, 1)));
        assert_eq!(loc.locate("a;"), Some((2, 1, 3)));
        assert_eq!(loc.locate("a;"), None);
        let text = "x\né;\n  é;";
        let mut loc = SliceLocator::new(text);
        assert_eq!(loc.locate("é;"), Some((2, 2, 1)));
        let (offset, line, column) = loc.locate("é;").unwrap();
        assert_eq!((line, column), line_column(text, offset));
        assert_eq!((line, column), (3, 3));
    }
}

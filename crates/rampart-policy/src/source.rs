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
/// identical policies in one document get their own positions.
pub struct SliceLocator<'a> {
    text: &'a str,
    cursor: usize,
}

impl<'a> SliceLocator<'a> {
    pub fn new(text: &'a str) -> Self {
        SliceLocator { text, cursor: 0 }
    }

    /// Byte offset of the next occurrence of `slice`, or `None` when it is not in the text
    /// (which happens only for policies that were not parsed from this text).
    pub fn locate(&mut self, slice: &str) -> Option<usize> {
        let rest = self.text.get(self.cursor..)?;
        let found = rest.find(slice)? + self.cursor;
        self.cursor = found + slice.len();
        Some(found)
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
        assert_eq!(loc.locate("a;"), Some(0));
        assert_eq!(loc.locate("a;"), Some(2));
        assert_eq!(loc.locate("a;"), None);
    }
}

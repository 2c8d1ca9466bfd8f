//! Lines parsed several at a time. Each parse call has a fixed cost (buffers, the document's
//! arena) of about a fifth of parsing a typical event, so lines are parsed 32 at a time, as
//! the elements of one JSON array.
//!
//! Joining lines must not change what any line means: a crafted line (`{"a":[{"b":1}`) could
//! otherwise open a structure that swallows the genuine event on the next line, with extra
//! elements elsewhere (`{},{}`) keeping the count right. So the joined parse is used only if
//! every element starts exactly where its line starts — checked through where the parser left
//! each element's first key — and there are as many elements as lines. Anything else (a bad
//! line, a line that is not a `{"…` object, a parser that does not keep keys in place) is
//! parsed line by line instead, with the same results.

use crate::json::{self, Json, JsonContainerTrait};

/// Lines per parse.
pub const BATCH_LINES: usize = 32;

/// Lines waiting to be parsed, joined as `[line,line,…]`.
#[derive(Debug)]
pub struct LineBatch {
    text: String,
    /// Where each line is in `text`, and its line number in the input.
    spans: Vec<(usize, usize, Option<usize>)>,
}

impl Default for LineBatch {
    fn default() -> Self {
        LineBatch { text: String::from("["), spans: Vec::with_capacity(BATCH_LINES) }
    }
}

impl LineBatch {
    pub fn push(&mut self, line: &str, number: Option<usize>) {
        if !self.spans.is_empty() {
            self.text.push(',');
        }
        let start = self.text.len();
        self.text.push_str(line);
        self.spans.push((start, self.text.len(), number));
    }

    pub fn is_full(&self) -> bool {
        self.spans.len() >= BATCH_LINES
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.truncate(1);
        self.spans.clear();
    }

    /// The lines, with their numbers.
    pub fn lines(&self) -> impl Iterator<Item = (&str, Option<usize>)> {
        self.spans.iter().map(|&(start, end, number)| (self.text.get(start..end).unwrap_or_default(), number))
    }

    /// The lines parsed in one call, element `i` being line `i` — or `None`, and the lines
    /// must be parsed one by one.
    pub fn parse(&mut self) -> Option<Json> {
        if self.spans.is_empty() || !self.lines().all(|(line, _)| line.starts_with("{\"")) {
            return None;
        }
        self.text.push(']');
        let parsed = json::parse(&self.text);
        self.text.pop();
        let doc = parsed.ok()?;
        self.exactly_the_lines(&doc).then_some(doc)
    }

    /// Whether `doc` has one element per line, each starting where its line starts.
    fn exactly_the_lines(&self, doc: &Json) -> bool {
        let Some(elements) = doc.as_array() else { return false };
        if elements.len() != self.spans.len() {
            return false;
        }
        // The parser keeps keys where they are in its copy of the text (unescaping in place),
        // so the distance between two elements' first keys is the distance between them in
        // the text. A line starts `{"`: its element's first key is at the line's start + 2
        // exactly when the element starts at the line's start.
        let first_key = |e: &Json| -> Option<usize> {
            let (key, _) = e.as_object()?.iter().next()?;
            Some(key.as_ptr() as usize)
        };
        let Some(base) = elements.first().and_then(first_key) else { return false };
        let Some(&(base_start, _, _)) = self.spans.first() else { return false };
        elements.iter().zip(&self.spans).all(|(element, &(start, _, _))| {
            first_key(element).is_some_and(|at| at.wrapping_sub(base) == start - base_start)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonValueTrait;

    fn batch(lines: &[&str]) -> LineBatch {
        let mut b = LineBatch::default();
        for (i, l) in lines.iter().enumerate() {
            b.push(l, Some(i + 1));
        }
        b
    }

    #[test]
    fn well_formed_lines_parse_together() {
        let lines = [
            r#"{"kind":"Event","verb":"get"}"#,
            r#"{"k\u0069nd":"Event","verb":"list","x":"a\"b"}"#,
            "{\"kind\":\"Event\",\"verb\":\"watch\"}",
        ];
        let mut b = batch(&lines);
        let doc = b.parse().expect("one parse");
        let verbs: Vec<&str> =
            doc.as_array().unwrap().iter().map(|e| e.get("verb").and_then(|v| v.as_str()).unwrap()).collect();
        assert_eq!(verbs, ["get", "list", "watch"]);
        assert_eq!(b.lines().map(|(_, n)| n.unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        b.clear();
        assert!(b.is_empty() && b.parse().is_none());
    }

    #[test]
    fn a_crafted_line_cannot_swallow_its_neighbour() {
        let genuine =
            r#"{"kind":"Event","auditID":"real","verb":"delete","objectRef":{"resource":"secrets"}}"#;
        // Joined, these make valid JSON with one element per line, the genuine event hidden
        // inside the first element.
        let lines = [
            r#"{"a":[{"b":1}"#,
            genuine,
            r#"{"c":1}]}"#,
            r#"{"auditID":"x"},{"auditID":"y"}"#,
            r#"{"d":1},{"e":2}"#,
        ];
        let mut joined = String::from("[");
        joined.push_str(&lines.join(","));
        joined.push(']');
        let parsed = json::parse(&joined).expect("the joined lines are valid JSON");
        assert_eq!(parsed.as_array().unwrap().len(), lines.len(), "the element count alone would not tell");
        assert!(batch(&lines).parse().is_none(), "the boundaries do");
        // A bad line or a line that is not an object: one by one.
        assert!(batch(&[genuine, "{\"kind\":"]).parse().is_none());
        assert!(batch(&[genuine, "[1]"]).parse().is_none());
        assert!(batch(&[genuine, " {\"kind\":\"Event\"}"]).parse().is_none());
        assert!(batch(&[genuine, genuine]).parse().is_some());
    }
}

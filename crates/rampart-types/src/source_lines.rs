//! Where each object of a YAML (or JSON) file starts, for `file:line` in reports: the first
//! line of each document's content, and of each item of a document's top-level `items:` list
//! (kubectl's `List` output, where a whole snapshot is one document).
//!
//! The positions come from a YAML event parser (saphyr-parser), not from splitting on `---`:
//! comments, blank lines, `---` inside block scalars and JSON files all land where the text
//! of the object starts. Positions are a convenience beside the objects the serde parser
//! reads; on text the event parser refuses, the documents read so far are returned and the
//! caller's serde parse reports the error.

use std::fmt;

use saphyr_parser::{Event, Parser};
use serde::Serialize;

/// A place in a file: `path:line`, the line 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One document's first line of content and the first line of each item of its top-level
/// `items:` sequence (empty when it has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentLines {
    pub start: usize,
    pub items: Vec<usize>,
}

impl DocumentLines {
    /// The line of item `index` of the `items:` list, else the document's.
    pub fn item(&self, index: usize) -> usize {
        self.items.get(index).copied().unwrap_or(self.start)
    }
}

/// Where the parser is inside the current document.
#[derive(Default)]
struct Walk {
    /// Nesting of mappings and sequences: 0 outside the document's root node.
    depth: usize,
    /// The root node is a mapping (only a mapping has an `items:` key).
    root_mapping: bool,
    /// In the root mapping: the next scalar or node is a key, not a value.
    expecting_key: bool,
    /// The root mapping's key just read was `items`.
    items_key: bool,
    /// Inside the root's `items:` sequence, whose items sit at depth 2.
    in_items: bool,
}

impl Walk {
    /// A scalar or alias in the root mapping: a key, or the value that ends a pair.
    fn leaf_in_root(&mut self, scalar: Option<&str>) {
        if self.expecting_key {
            self.items_key = scalar == Some("items");
        } else {
            self.items_key = false;
        }
        self.expecting_key = !self.expecting_key;
    }
}

/// Every document of `text`, in order, as serde's multi-document deserializer yields them.
pub fn document_lines(text: &str) -> Vec<DocumentLines> {
    let mut documents: Vec<DocumentLines> = Vec::new();
    let mut walk = Walk::default();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let line = span.start.line();
        if let Event::DocumentStart(_) = event {
            documents.push(DocumentLines { start: line, items: Vec::new() });
            walk = Walk::default();
            continue;
        }
        let Some(document) = documents.last_mut() else { continue };
        let root_pair = walk.depth == 1 && walk.root_mapping;
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let mapping = matches!(event, Event::MappingStart(..));
                if walk.depth == 0 {
                    // The root node: where the document's content starts.
                    document.start = line;
                    walk.root_mapping = mapping;
                    walk.expecting_key = mapping;
                } else if root_pair {
                    walk.in_items = walk.items_key && !walk.expecting_key && !mapping;
                } else if walk.depth == 2 && walk.in_items {
                    document.items.push(line);
                }
                walk.depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                walk.depth = walk.depth.saturating_sub(1);
                if walk.depth == 1 && walk.root_mapping {
                    // A node that was a value (or, rarely, a key) in the root mapping ended.
                    walk.in_items = false;
                    walk.leaf_in_root(None);
                }
            }
            Event::Scalar(..) if walk.depth == 0 => document.start = line,
            // Every item counts, whatever its shape, so item i is serde's item i.
            Event::Scalar(..) | Event::Alias(_) if walk.depth == 2 && walk.in_items => {
                document.items.push(line)
            }
            Event::Scalar(value, ..) if root_pair => walk.leaf_in_root(Some(&value)),
            Event::Alias(_) if root_pair => walk.leaf_in_root(None),
            _ => {}
        }
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(text: &str) -> Vec<usize> {
        document_lines(text).iter().map(|d| d.start).collect()
    }

    #[test]
    fn documents_start_at_their_content() {
        let text = "# a comment\n\nkind: A\n---\n\n# another\nkind: B\n--- \nkind: C\nx: |\n  ---\n  not a document\n";
        assert_eq!(starts(text), vec![3, 7, 9]);
        assert_eq!(starts("{\"kind\": \"A\"}\n"), vec![1]);
        assert_eq!(starts(""), Vec::<usize>::new());
    }

    #[test]
    fn list_items_have_their_own_lines() {
        let text = "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec:\n    items:\n    - x: 1\n- kind: Service\nkind: List\n";
        let documents = document_lines(text);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].start, 1);
        // Only the root's `items`, not a nested one.
        assert_eq!(documents[0].items, vec![3, 8]);
        // An item that is not an object still takes its place in the count.
        let mixed = "items:\n- null\n- [1]\n- kind: Pod\nkind: List\n";
        assert_eq!(document_lines(mixed)[0].items, vec![2, 3, 4]);
        assert_eq!(documents[0].item(1), 8);
        assert_eq!(documents[0].item(5), 1);
        // kubectl's JSON.
        let json = "{\n  \"apiVersion\": \"v1\",\n  \"items\": [\n    {\n      \"kind\": \"Pod\"\n    },\n    {\n      \"kind\": \"Pod\"\n    }\n  ],\n  \"kind\": \"List\"\n}\n";
        assert_eq!(document_lines(json)[0].items, vec![4, 7]);
    }

    #[test]
    fn an_items_value_that_is_not_a_list_or_a_key_that_is_not_items_counts_nothing() {
        assert!(document_lines("items: 3\nother:\n- a: 1\n")[0].items.is_empty());
        assert!(document_lines("data:\n  items:\n  - a: 1\n")[0].items.is_empty());
    }

    #[test]
    fn text_the_parser_refuses_keeps_the_documents_before_it() {
        let documents = document_lines("kind: A\n---\nkind: [\n");
        assert_eq!(documents.first().map(|d| d.start), Some(1));
    }

    #[test]
    fn a_place_reads_file_colon_line() {
        assert_eq!(Place { file: "a.yaml".into(), line: 3 }.to_string(), "a.yaml:3");
    }
}

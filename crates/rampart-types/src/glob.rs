//! Wildcard patterns, one implementation for every place they appear — Falco's `glob`
//! operator, access-policy namespace scopes (`dev-*`), guardrail registry allow-lists — on the
//! `wildmatch` crate, which matches in linear time (a backtracking matcher is exponential on
//! patterns such as `*a*a*a*a*b`, and these patterns come from configuration files).

use wildmatch::WildMatchPattern;

/// `*` matches any run of characters (none included); every other character is literal.
/// (wildmatch needs a single-character wildcard too: NUL, which no name, namespace or image
/// reference contains.)
pub fn star(pattern: &str, text: &str) -> bool {
    WildMatchPattern::<'*', '\0'>::new(pattern).matches(text)
}

/// `*` matches any run of characters and `?` exactly one, as Falco's `glob` does.
pub fn star_question(pattern: &str, text: &str) -> bool {
    WildMatchPattern::<'*', '?'>::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_is_the_only_wildcard() {
        assert!(star("dev-*", "dev-a") && star("*", "") && star("*.io/*", "quay.io/x/y"));
        assert!(!star("dev-*", "prod") && !star("a?c", "abc") && star("a?c", "a?c"));
        assert!(star("ü*", "über"), "characters, not bytes");
    }

    #[test]
    fn star_question_matches_falco() {
        assert!(star_question("/etc/pass?d", "/etc/passwd") && star_question("*", "anything"));
        assert!(!star_question("a?", "a"));
    }

    #[test]
    fn adversarial_patterns_stay_fast() {
        // Exponential for a backtracking matcher; linear here (no timing assertion: it
        // simply finishes).
        let pattern = "*a".repeat(30) + "b";
        assert!(!star(&pattern, &"a".repeat(60)));
        assert!(!star_question(&pattern, &"a".repeat(60)));
    }
}

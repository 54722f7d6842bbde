//! Turning a typed search box into search terms.

use carrel_store::MAX_TERMS;

/// English stop words: never searched (PostgreSQL's `english` configuration
/// drops them too, so both backends treat them alike).
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "if", "in", "into",
    "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with", "he", "she", "his", "her", "its", "we",
    "you", "i", "me", "my", "our", "so", "than", "too", "very",
];

/// Lower-case words of letters and digits, stop words removed, duplicates
/// dropped, at most [`MAX_TERMS`] terms of at most 64 characters. Punctuation
/// and operators of either search engine are separators, never syntax.
pub fn terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word: String = word.to_lowercase().chars().take(64).collect();
        if STOP_WORDS.contains(&word.as_str()) || out.contains(&word) {
            continue;
        }
        out.push(word);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_just_separators() {
        assert_eq!(terms("The War of the Worlds"), ["war", "worlds"]);
        assert_eq!(terms("' OR 1=1 --"), ["1"]);
        assert_eq!(terms("title:moby AND dick*"), ["title", "moby", "dick"]);
        assert_eq!(terms("\"NEAR(a b)\" ^x"), ["near", "b", "x"]);
        assert!(terms("the of and").is_empty());
        assert_eq!(terms("Émile Zola").len(), 2);
        assert_eq!(terms(&"w ".repeat(100)).len(), 1);
        assert_eq!(
            terms("one two three four five six seven eight nine ten").len(),
            MAX_TERMS
        );
    }
}

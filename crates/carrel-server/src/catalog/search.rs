//! Turning a typed search box into search terms.

use carrel_store::MAX_TERMS;

/// English stop words: never searched. This is PostgreSQL's `english` list
/// (`tsearch_data/english.stop`, 127 words), which its parser drops from both
/// documents and queries; dropping the same words here, before either backend
/// sees the query, keeps a search such as "about whales" alike on SQLite, whose
/// FTS5 index keeps every word.
const STOP_WORDS: &str = "\
    i me my myself we our ours ourselves you your yours yourself yourselves he him his \
    himself she her hers herself it its itself they them their theirs themselves what \
    which who whom this that these those am is are was were be been being have has had \
    having do does did doing a an the and but if or because as until while of at by for \
    with about against between into through during before after above below to from up \
    down in out on off over under again further then once here there when where why how \
    all any both each few more most other some such no nor not only own same so than \
    too very s t can will just don should now";

/// Is `word` (lower case) one of the stop words?
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.split_ascii_whitespace().any(|w| w == word)
}

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
        if is_stop_word(&word) || out.contains(&word) {
            continue;
        }
        out.push(word);
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// Is the last word of `query` still being typed, and so to be completed? It
/// is when the query does not end with a separator, the word has at least 2
/// characters, and it is the last of `terms` (not a dropped stop word).
pub fn completes_last_word(query: &str, terms: &[String]) -> bool {
    if !query.chars().next_back().is_some_and(char::is_alphanumeric) {
        return false;
    }
    let Some(word) = query.split(|c: char| !c.is_alphanumeric()).next_back() else {
        return false;
    };
    let word: String = word.to_lowercase().chars().take(64).collect();
    word.chars().count() >= 2 && terms.last() == Some(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_word_still_being_typed_is_completed() {
        let check = |q: &str| completes_last_word(q, &terms(q));
        assert!(check("histor"));
        assert!(check("roman histor"));
        assert!(!check("histor "), "a space ends the word");
        assert!(!check("roman h"), "one character is too short");
        assert!(!check("history of the"), "a stop word is not searched");
        assert!(check("rome rom"), "the last word, not the first");
        assert!(!check(""));
    }

    #[test]
    fn operators_are_just_separators() {
        assert_eq!(terms("The War of the Worlds"), ["war", "worlds"]);
        assert_eq!(terms("' OR 1=1 --"), ["1"]);
        assert_eq!(terms("title:moby AND dick*"), ["title", "moby", "dick"]);
        assert_eq!(terms("\"NEAR(a b)\" ^x"), ["near", "b", "x"]);
        assert!(terms("the of and").is_empty());
        assert_eq!(terms("What about the whales"), ["whales"]);
        assert_eq!(STOP_WORDS.split_ascii_whitespace().count(), 127);
        assert_eq!(terms("Émile Zola").len(), 2);
        assert_eq!(terms(&"w ".repeat(100)).len(), 1);
        assert_eq!(
            terms("one two three four five six seven eight nine ten").len(),
            MAX_TERMS
        );
    }
}

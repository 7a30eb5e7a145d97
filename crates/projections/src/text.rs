//! The search tokenizer for Chinese and English text: lowercase words for Latin text (letters and
//! digits), and overlapping character bigrams for CJK text, which has no spaces. A CJK run of one
//! character is kept as a unigram so that a one-character query still finds it.
//!
//! Both the index and the query go through the same function, so a query matches a document
//! when every query token is one of the document's tokens.

/// Longest word kept, in characters; longer runs (hashes, base64) are cut, not dropped, so a
/// query of the same run still matches.
pub const WORD_CHARS_MAX: usize = 40;

fn is_cjk(ch: char) -> bool {
    matches!(ch,
        '\u{3040}'..='\u{30ff}'   // hiragana, katakana
        | '\u{3400}'..='\u{4dbf}' // CJK extension A
        | '\u{4e00}'..='\u{9fff}' // CJK unified ideographs
        | '\u{ac00}'..='\u{d7af}' // hangul syllables
        | '\u{f900}'..='\u{faff}' // CJK compatibility ideographs
    )
}

/// The distinct tokens of `text`, in order of first appearance.
pub fn tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    each_token(text, |token| {
        if !tokens.iter().any(|known| known == token) {
            tokens.push(token.to_owned());
        }
    });
    tokens
}

/// Calls `found` with every token of `text` in order, repeats included, without allocating
/// per token (the index's hot path; `tokens` is the same sequence, deduplicated).
pub fn each_token(text: &str, mut found: impl FnMut(&str)) {
    let mut word = String::new();
    let mut word_chars = 0;
    // The CJK run so far: its first character (for a run of one) and the one before `ch`.
    let mut cjk_first: Option<char> = None;
    let mut cjk_previous: Option<char> = None;
    let mut cjk_len = 0usize;
    let mut pair = String::new();
    let flush_cjk = |first: &mut Option<char>, len: &mut usize, found: &mut dyn FnMut(&str)| {
        if *len == 1 {
            if let Some(only) = *first {
                let mut buffer = [0u8; 4];
                found(only.encode_utf8(&mut buffer));
            }
        }
        *first = None;
        *len = 0;
    };
    for ch in text.chars() {
        if is_cjk(ch) {
            if !word.is_empty() {
                found(&word);
                word.clear();
                word_chars = 0;
            }
            if cjk_len == 0 {
                cjk_first = Some(ch);
            } else if let Some(previous) = cjk_previous {
                pair.clear();
                pair.push(previous);
                pair.push(ch);
                found(&pair);
            }
            cjk_previous = Some(ch);
            cjk_len += 1;
        } else if ch.is_alphanumeric() {
            flush_cjk(&mut cjk_first, &mut cjk_len, &mut found);
            if word_chars < WORD_CHARS_MAX {
                if ch.is_ascii() {
                    word.push(ch.to_ascii_lowercase());
                } else {
                    word.extend(ch.to_lowercase());
                }
                word_chars += 1;
            }
        } else {
            flush_cjk(&mut cjk_first, &mut cjk_len, &mut found);
            if !word.is_empty() {
                found(&word);
                word.clear();
                word_chars = 0;
            }
        }
    }
    flush_cjk(&mut cjk_first, &mut cjk_len, &mut found);
    if !word.is_empty() {
        found(&word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_chinese_and_english() {
        let check = |text: &str, expect: expect_test::Expect| {
            expect.assert_eq(&tokens(text).join(" "));
        };
        check(
            "Payment FAILED: 无法支付, order #12345",
            expect_test::expect!["payment failed 无法 法支 支付 order 12345"],
        );
        check("系统崩溃了", expect_test::expect!["系统 统崩 崩溃 溃了"]);
        check("单 a 单", expect_test::expect!["单 a"]);
        check("Ünïcode café", expect_test::expect!["ünïcode café"]);
        check("  ", expect_test::expect![""]);
    }

    #[test]
    fn words_are_cut_at_the_bound() {
        let at_max = "a".repeat(WORD_CHARS_MAX);
        assert_eq!(tokens(&at_max), vec![at_max.clone()]);
        assert_eq!(tokens(&format!("{at_max}b")), vec![at_max]);
    }
}

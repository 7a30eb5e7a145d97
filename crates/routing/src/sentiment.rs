//! Is the customer upset? A lexicon of weighted phrases, Chinese and English, with negation
//! ("not bad", "不差", "并不失望" count nothing) and intensity (repeated exclamation marks,
//! shouting in capitals). A message scoring `UPSET_SCORE_MIN` or more is strongly negative.
//!
//! Why a lexicon and not a model: the decision must be explainable in the event (the matched
//! phrases are the evidence), deterministic, cheap (it runs on every customer message) and free
//! of heavy dependencies. Its precision and recall are measured on `testdata/sentiment.tsv`
//! (see docs/routing.md); mild complaints are deliberately not flagged.

/// The rule id recorded in `PriorityChangedByRule` and `CustomerUpsetFlagged`.
pub const RULE_ID: &str = "sentiment.upset";
/// The score from which a message is strongly negative.
pub const UPSET_SCORE_MIN: u32 = 2;
/// Characters of a message looked at.
pub const SENTIMENT_CHARS_MAX: usize = 4_000;
/// Evidence phrases kept.
pub const EVIDENCE_PHRASES_MAX: usize = 4;

/// English phrases and their weight: 3 is anger or a threat to leave on its own, 2 strongly
/// negative, 1 a complaint that needs company. Matched on word boundaries, lowercase.
const ENGLISH: &[(&str, u32)] = &[
    ("cancel my account", 3),
    ("close my account", 3),
    ("cancel my subscription", 3),
    ("delete my account", 3),
    ("never buy", 3),
    ("never order", 3),
    ("never use", 3),
    ("never again", 3),
    ("never shop", 3),
    ("never shopping", 3),
    ("never ordering", 3),
    ("never buying", 3),
    ("never using", 3),
    ("worst", 3),
    ("scam", 3),
    ("scammers", 3),
    ("fraud", 3),
    ("rip-off", 3),
    ("ripoff", 3),
    ("rip off", 3),
    ("furious", 3),
    ("outraged", 3),
    ("livid", 3),
    ("disgusting", 3),
    ("disgrace", 3),
    ("disgraceful", 3),
    ("appalling", 3),
    ("unacceptable", 3),
    ("pathetic", 3),
    ("incompetent", 3),
    ("thieves", 3),
    ("stole my money", 3),
    ("lawyer", 3),
    ("legal action", 3),
    ("sue you", 3),
    ("report you", 3),
    ("chargeback", 3),
    ("shame on you", 3),
    ("fed up", 3),
    ("sick and tired", 3),
    ("sick of", 3),
    ("had enough", 3),
    ("waste of money", 3),
    ("waste of time", 3),
    ("ridiculous", 2),
    ("horrible", 2),
    ("terrible", 2),
    ("awful", 2),
    ("useless", 2),
    ("garbage", 2),
    ("trash", 2),
    ("joke", 2),
    ("liars", 2),
    ("lied to me", 2),
    ("angry", 2),
    ("hate", 2),
    ("extremely disappointed", 3),
    ("very disappointed", 2),
    ("so disappointed", 2),
    ("beyond frustrated", 3),
    ("disappointed", 1),
    ("frustrated", 1),
    ("frustrating", 1),
    ("annoyed", 1),
    ("unhappy", 1),
    ("not happy", 1),
    ("upset", 1),
    ("poor", 1),
    ("still waiting", 1),
    ("no one", 1),
    ("nobody", 1),
    ("ignored", 1),
    ("third time", 1),
    ("again", 1),
    ("complaint", 1),
];

/// Chinese phrases and their weight, as for English; matched as substrings.
const CHINESE: &[(&str, u32)] = &[
    ("再也不买", 3),
    ("再也不会买", 3),
    ("再也不来", 3),
    ("再也不用", 3),
    ("不会再买", 3),
    ("不会再来", 3),
    ("不会再用", 3),
    ("失望透顶", 3),
    ("寒心", 3),
    ("太差劲", 3),
    ("差劲", 3),
    ("垃圾", 3),
    ("骗子", 3),
    ("诈骗", 3),
    ("欺诈", 3),
    ("骗钱", 3),
    ("坑人", 3),
    ("坑爹", 3),
    ("黑心", 3),
    ("无耻", 3),
    ("不要脸", 3),
    ("气死", 3),
    ("愤怒", 3),
    ("忍无可忍", 3),
    ("受够了", 3),
    ("烂透了", 3),
    ("糟糕透顶", 3),
    ("最差", 3),
    ("太失望", 3),
    ("非常失望", 3),
    ("极其失望", 3),
    ("恶心", 3),
    ("我要投诉", 3),
    ("投诉你们", 3),
    ("12315", 3),
    ("消协", 3),
    ("起诉", 3),
    ("律师", 3),
    ("曝光", 3),
    ("注销账号", 3),
    ("注销账户", 3),
    ("销户", 3),
    ("什么破", 3),
    ("太过分", 3),
    ("欺负人", 3),
    ("火大", 3),
    ("退钱", 2),
    ("差评", 2),
    ("忽悠", 2),
    ("无语", 2),
    ("太差", 2),
    ("很差", 2),
    ("真差", 2),
    ("糟糕", 2),
    ("离谱", 2),
    ("太坑", 2),
    ("失望", 1),
    ("生气", 2),
    ("不满", 1),
    ("投诉", 1),
    ("太慢", 1),
    ("没人回复", 1),
    ("没人理", 1),
    ("一直没人", 1),
    ("第三次", 1),
    ("又", 1),
];

/// Words that turn an English phrase after them around ("not bad", "never been this happy").
const ENGLISH_NEGATORS: &[&str] = &[
    "not", "no", "isn't", "wasn't", "aren't", "weren't", "don't", "didn't", "doesn't", "hardly",
    "nothing", "without", "never",
];

/// Characters that turn a Chinese phrase right after them around ("不差", "并不失望", "没有生气").
const CHINESE_NEGATORS: &[char] = &['不', '没', '未'];

/// What made a message strongly negative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upset {
    pub score: u32,
    /// The phrases that counted, as written in the lexicon.
    pub evidence: Vec<String>,
}

/// The score of a message and the phrases behind it, whatever the score.
pub fn score(text: &str) -> Upset {
    let text: String = text.chars().take(SENTIMENT_CHARS_MAX).collect();
    let lower = text.to_lowercase();
    let mut score = 0;
    let mut evidence = Vec::new();
    // Longer phrases first claim their bytes, so "太差劲" is not also counted as "差劲".
    let mut claimed: Vec<(usize, usize)> = Vec::new();
    for &(phrase, weight, english) in lexicon() {
        for (start, _) in lower.match_indices(phrase) {
            let end = start + phrase.len();
            if claimed.iter().any(|(s, e)| start < *e && *s < end) {
                continue;
            }
            if english && !on_word_boundaries(&lower, start, end) {
                continue;
            }
            let negated = if english {
                english_negated(&lower[..start])
            } else {
                chinese_negated(&lower[..start], phrase)
            };
            claimed.push((start, end));
            if negated {
                continue;
            }
            score += weight;
            if evidence.len() < EVIDENCE_PHRASES_MAX && !evidence.iter().any(|e| e == phrase) {
                evidence.push(phrase.to_owned());
            }
        }
    }
    if score > 0 {
        let exclamations = text.matches(['!', '！']).count();
        if exclamations >= 2 {
            score += 1;
            evidence.push("!!".to_owned());
        }
        let shouted = text
            .split(|c: char| !c.is_alphabetic())
            .filter(|word| word.len() >= 4 && word.chars().all(|c| c.is_ascii_uppercase()))
            .count();
        if shouted >= 2 {
            score += 1;
            evidence.push("CAPITALS".to_owned());
        }
    }
    Upset { score, evidence }
}

/// Both lexicons as `(phrase, weight, english)`, longest phrase first, sorted once.
fn lexicon() -> &'static [(&'static str, u32, bool)] {
    static LEXICON: std::sync::OnceLock<Vec<(&'static str, u32, bool)>> =
        std::sync::OnceLock::new();
    LEXICON.get_or_init(|| {
        let mut lexicon: Vec<(&str, u32, bool)> = ENGLISH
            .iter()
            .map(|(phrase, weight)| (*phrase, *weight, true))
            .chain(
                CHINESE
                    .iter()
                    .map(|(phrase, weight)| (*phrase, *weight, false)),
            )
            .collect();
        lexicon.sort_by_key(|(phrase, _, _)| std::cmp::Reverse(phrase.len()));
        lexicon
    })
}

/// `Some` when the message is strongly negative.
pub fn detect(text: &str) -> Option<Upset> {
    let upset = score(text);
    (upset.score >= UPSET_SCORE_MIN).then_some(upset)
}

fn on_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// A negator among the two words just before the phrase, in the same clause.
fn english_negated(before: &str) -> bool {
    let clause = before
        .rsplit(['.', ',', ';', '!', '?', '\n'])
        .next()
        .unwrap_or("");
    clause.split_whitespace().rev().take(2).any(|word| {
        ENGLISH_NEGATORS.contains(&word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
    })
}

/// A negator within the two characters before the phrase ("不差", "并不失望", "不算太差"
/// counts 算 as a bridge). Phrases that carry their own negation (再也不买) are never negated.
fn chinese_negated(before: &str, phrase: &str) -> bool {
    if phrase.contains('不') || phrase.contains('没') {
        return false;
    }
    before
        .chars()
        .rev()
        .take(3)
        .take_while(|c| !matches!(c, '，' | '。' | '！' | '？' | ',' | '.' | '!' | '?'))
        .any(|c| CHINESE_NEGATORS.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negation_and_intensity() {
        let cases = [
            "not bad at all",
            "the worst service I have ever had",
            "this is not the worst, but close",
            "太差劲了，再也不买了！！",
            "东西不差，物流也快",
            "并不失望",
            "I want to cancel my account",
            "THIS IS UNACCEPTABLE, FIX IT NOW",
            "there is an issue with my order",
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|text| {
                let upset = score(text);
                format!("{text} => {} {:?}", upset.score, upset.evidence)
            })
            .collect();
        expect_test::expect![[r#"
            not bad at all => 0 []
            the worst service I have ever had => 3 ["worst"]
            this is not the worst, but close => 0 []
            太差劲了，再也不买了！！ => 7 ["再也不买", "太差劲", "!!"]
            东西不差，物流也快 => 0 []
            并不失望 => 0 []
            I want to cancel my account => 3 ["cancel my account"]
            THIS IS UNACCEPTABLE, FIX IT NOW => 4 ["unacceptable", "CAPITALS"]
            there is an issue with my order => 0 []"#]]
        .assert_eq(&actual.join("\n"));
    }
}
